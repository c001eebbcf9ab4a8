"""``/api/v3/sources/authentik/`` and System > Sources: administrators only, refusals tested,
and the API token never shown again (API, pages, events, logs)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from auditlog.models import Event
from sources import secrets
from sources.models import AuthentikSource
from sources.services import create_source

pytestmark = pytest.mark.django_db

API = "/api/v3/sources/authentik/"
TOKEN = "ak-api-token-Zq8vTqLq0yZ4"


def page_as(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def everything_said(caplog: pytest.LogCaptureFixture) -> str:
    events = json.dumps(list(Event.objects.values("context", "user")), default=str)
    return events + caplog.text


def test_an_administrator_adds_a_source_and_its_token_is_never_answered(
    admin_user: Any, api_as: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = api_as(admin_user)
    created = api.post(
        API, {"name": "corp", "url": "https://auth.example.com", "token": TOKEN}, format="json"
    )
    assert created.status_code == 201, created.content
    assert "Location" not in created.headers  # DRF would name the instance's own "url" there
    body = created.json()
    assert "token" not in body and body["webhook_token"]
    assert body["webhook_path"] == "/api/v3/sources/authentik/corp/webhook/"
    source = AuthentikSource.objects.get(name="corp")
    assert source.token != TOKEN and secrets.decrypt(source.token) == TOKEN  # encrypted
    assert secrets.matches(body["webhook_token"], source.webhook_token_digest)

    listed = api.get(API)
    detail = api.get(f"{API}{source.pk}/")
    changed = api.patch(f"{API}{source.pk}/", {"page_size": 50}, format="json")
    for answer in (listed, detail, changed):
        assert answer.status_code == 200
        assert TOKEN not in answer.content.decode() and source.token not in answer.content.decode()
        assert "webhook_token" not in answer.content.decode()
    assert listed.json()["results"][0]["events_imported"] == 0
    source.refresh_from_db()
    assert source.page_size == 50 and secrets.decrypt(source.token) == TOKEN  # kept
    said = everything_said(caplog)
    assert TOKEN not in said and source.token not in said
    assert body["webhook_token"] not in said

    replaced = api.patch(f"{API}{source.pk}/", {"token": "new-token-value"}, format="json")
    assert replaced.status_code == 200
    source.refresh_from_db()
    assert secrets.decrypt(source.token) == "new-token-value"
    assert "new-token-value" not in everything_said(caplog)


def test_a_new_webhook_token_replaces_the_old_one(admin_user: Any, api_as: Any) -> None:
    source, old = create_source(name="corp", url="https://a.example.com", token=TOKEN)
    answer = api_as(admin_user).post(f"{API}{source.pk}/webhook_token/")
    assert answer.status_code == 200
    source.refresh_from_db()
    assert secrets.matches(answer.json()["webhook_token"], source.webhook_token_digest)
    assert not secrets.matches(old, source.webhook_token_digest)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "url": "ftp://a.example.com", "token": "t"}, "url"),
        ({"name": "Bad Name!", "url": "https://a.example.com", "token": "t"}, "name"),
        ({"name": "x", "url": "https://a.example.com"}, "token"),
        ({"name": "x", "url": "https://a.example.com", "token": "t", "page_size": 0}, "page_size"),
        (
            {"name": "x", "url": "https://a.example.com", "token": "t", "page_size": 5000},
            "page_size",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    admin_user: Any, api_as: Any, body: dict[str, Any], field: str
) -> None:
    answer = api_as(admin_user).post(API, body, format="json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not AuthentikSource.objects.exists()


def test_sync_now_runs_the_sync_and_the_status_shows_the_error(
    admin_user: Any, api_as: Any
) -> None:
    source, _ = create_source(name="gone", url="http://127.0.0.1:9", token=TOKEN)
    api = api_as(admin_user)
    answer = api.post(f"{API}{source.pk}/sync/")
    assert answer.status_code == 202
    status = api.get(f"{API}{source.pk}/").json()
    assert status["last_error"].startswith("Could not reach http://127.0.0.1:9")
    assert status["last_sync_finished"] is not None and status["lag_seconds"] is None
    assert status["last_success"] is None  # a failed sync is no success


@pytest.mark.parametrize("persona", ["anonymous", "nobody", "auditor"])
def test_only_administrators_reach_the_sources_api(
    persona: str, api_as: Any, nobody: Any, auditor: Any
) -> None:
    source, _ = create_source(name="corp", url="https://a.example.com", token=TOKEN)
    user = {"anonymous": None, "nobody": nobody, "auditor": auditor}[persona]
    api = api_as(user)
    answers = [
        api.get(API),
        api.get(f"{API}{source.pk}/"),
        api.post(API, {"name": "y", "url": "https://b.example.com", "token": "t"}, format="json"),
        api.patch(f"{API}{source.pk}/", {"enabled": False}, format="json"),
        api.post(f"{API}{source.pk}/sync/"),
        api.post(f"{API}{source.pk}/webhook_token/"),
        api.delete(f"{API}{source.pk}/"),
    ]
    assert [answer.status_code for answer in answers] == [403] * len(answers)
    source.refresh_from_db()
    assert source.enabled and AuthentikSource.objects.count() == 1


def test_the_status_page_lists_sources_and_admins_manage_them(admin_user: Any) -> None:
    page = page_as(admin_user)
    new = page.post(
        "/system/sources/new/",
        {
            "name": "corp",
            "url": "https://auth.example.com",
            "token": TOKEN,
            "page_size": 100,
            "enabled": "on",
            "verify_tls": "on",
        },
    )
    assert new.status_code == 201, new.content.decode()[:2000]
    source = AuthentikSource.objects.get(name="corp")
    shown = new.content.decode()
    assert "shown this once" in shown and TOKEN not in shown
    assert secrets.decrypt(source.token) == TOKEN

    listing = page.get("/system/sources/").content.decode()
    assert "corp" in listing and "Sync now" in listing and TOKEN not in listing
    edit = page.get(f"/system/sources/{source.pk}/")
    assert edit.status_code == 200
    assert TOKEN not in edit.content.decode() and source.token not in edit.content.decode()
    kept = page.post(
        f"/system/sources/{source.pk}/",
        {"name": "corp", "url": "https://auth2.example.com", "token": "", "page_size": 100},
    )
    assert kept.status_code == 302
    source.refresh_from_db()
    assert source.url == "https://auth2.example.com" and secrets.decrypt(source.token) == TOKEN
    assert not source.enabled
    rotated = page.post(f"/system/sources/{source.pk}/webhook-token/")
    assert rotated.status_code == 200 and "shown this once" in rotated.content.decode()
    assert page.post(f"/system/sources/{source.pk}/sync/").status_code == 302
    source.refresh_from_db()
    assert source.last_sync_finished is not None
    assert page.post(f"/system/sources/{source.pk}/delete/").status_code == 302
    assert not AuthentikSource.objects.exists()
    said = json.dumps(list(Event.objects.values("context")), default=str)
    assert TOKEN not in said


def test_a_bad_form_is_a_400_with_the_reason(admin_user: Any) -> None:
    answer = page_as(admin_user).post(
        "/system/sources/new/", {"name": "corp", "url": "ftp://x", "token": "", "page_size": 10}
    )
    assert answer.status_code == 400
    assert "This field is required." in answer.content.decode()
    assert "Enter a valid URL." in answer.content.decode()
    assert not AuthentikSource.objects.exists()


@pytest.mark.parametrize("persona", ["nobody", "auditor"])
def test_the_pages_refuse_everyone_but_administrators(
    persona: str, nobody: Any, auditor: Any
) -> None:
    source, _ = create_source(name="corp", url="https://a.example.com", token=TOKEN)
    page = page_as({"nobody": nobody, "auditor": auditor}[persona])
    answers = [
        page.get("/system/sources/"),
        page.get("/system/sources/new/"),
        page.get(f"/system/sources/{source.pk}/"),
        page.post(f"/system/sources/{source.pk}/sync/"),
        page.post(f"/system/sources/{source.pk}/webhook-token/"),
        page.post(f"/system/sources/{source.pk}/delete/"),
    ]
    assert [answer.status_code for answer in answers] == [403] * len(answers)
    assert AuthentikSource.objects.filter(last_sync_started__isnull=True).count() == 1
    anonymous = page_as(None).get("/system/sources/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_the_command_names_the_known_sources_when_one_is_unknown() -> None:
    create_source(name="corp", url="https://a.example.com", token=TOKEN)
    with pytest.raises(CommandError, match="No authentik source named 'nope' \\(known: corp\\)"):
        call_command("sync_source", "nope")
    with pytest.raises(CommandError, match="--page-size must be between 1 and 1000"):
        call_command("sync_source", "corp", "--page-size", "0")


def test_the_command_fails_with_the_sources_error() -> None:
    create_source(name="gone", url="http://127.0.0.1:9", token=TOKEN)
    with pytest.raises(CommandError, match="The sync failed: Could not reach"):
        call_command("sync_source", "gone", "-v", "0")
