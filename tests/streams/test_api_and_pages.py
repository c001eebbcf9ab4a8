"""System > Streams and /api/v3/streams/destinations/: bad configuration refused per field,
secrets write-only, pause / resume / replay / health, and the refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from streams import secrets
from streams.models import Destination, Transport
from tests.conftest import grant
from tests.streams.conftest import make_destination
from tests.streams.receivers import make_test_ca

pytestmark = pytest.mark.django_db

API = "/api/v3/streams/destinations/"
PAGES = "/system/streams/"
HTTP = {
    "name": "splunk",
    "format": "api",
    "transport": "http",
    "url": "https://splunk.example.com:8088/services/collector",
    "http_shape": "splunk_hec",
    "auth_header_value": "Splunk 1234-very-secret-hec-token",
    "signing_key": "receiver-signing-key",
}


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_api_creates_a_destination_and_never_answers_its_secrets(api_as, admin_user) -> None:
    response = api_as(admin_user).post(API, HTTP, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "auth_header_value" not in body and "signing_key" not in body
    assert body["has_auth_header"] and body["has_signing_key"]
    assert "very-secret" not in response.content.decode()
    assert body["health"]["lag_events"] >= 0 and body["health"]["last_error"] == ""
    stored = Destination.objects.get(name="splunk")
    assert "very-secret" not in stored.auth_header_value
    assert secrets.decrypt(stored.auth_header_value) == HTTP["auth_header_value"]
    listed = api_as(admin_user).get(API)
    assert "very-secret" not in listed.content.decode()
    # A change without the secret keeps it.
    patched = api_as(admin_user).patch(f"{API}{stored.pk}/", {"batch_size": 50}, format="json")
    assert patched.status_code == 200
    stored.refresh_from_db()
    assert secrets.decrypt(stored.auth_header_value) == HTTP["auth_header_value"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"url": "htp:/nowhere"}, "url", "not a valid http:// or https:// URL"),
        ({"url": ""}, "url", "needs the receiver's URL"),
        ({"url": "https://u:p4ss@splunk.example.com/"}, "url", "not in the URL"),
        ({"format": "leef"}, "format", 'Unknown format "leef"'),
        ({"filter": 'action = "login'}, "filter", "does not parse"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
    ],
)
def test_bad_http_configuration_is_refused_per_field(
    api_as, admin_user, change: dict[str, Any], field: str, words: str
) -> None:
    response = api_as(admin_user).post(API, {**HTTP, **change}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Destination.objects.exists()


def test_a_tls_certificate_that_does_not_load_is_refused(
    api_as, admin_user, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    )
    ca = make_test_ca(tmp_path)
    syslog = {"name": "tls", "transport": "syslog_tls", "host": "siem.example.com", "port": 6514}
    client = api_as(admin_user)
    response = client.post(API, {**syslog, "ca_file": str(garbage)}, format="json")
    assert response.status_code == 400
    assert "The CA file does not load" in response.json()["ca_file"][0]
    response = client.post(
        API, {**syslog, "ca_file": str(ca.ca_file), "client_cert": str(ca.ca_file)}, format="json"
    )
    assert response.status_code == 400
    assert "The client certificate does not load" in response.json()["client_cert"][0]
    response = client.post(API, {**syslog, "ca_file": str(tmp_path / "none.pem")}, format="json")
    assert "does not exist" in response.json()["ca_file"][0]
    outside = {"name": "cron", "transport": "file", "path": "/etc/cron.d/auditlog"}
    response = client.post(API, outside, format="json")
    assert "The file must be under" in response.json()["path"][0]
    response = client.post(API, {"name": "tcp", "transport": "syslog_tcp"}, format="json")
    assert set(response.json()) == {"host", "port"}
    good = {
        **syslog,
        "ca_file": str(ca.ca_file),
        "client_cert": str(ca.server_cert),
        "client_key": str(ca.server_key),
    }
    assert client.post(API, good, format="json").status_code == 201


def test_pause_resume_replay_and_health_through_the_api(api_as, admin_user, make_events) -> None:
    make_events(3)
    destination = make_destination(transport=Transport.FILE)
    client = api_as(admin_user)
    url = f"{API}{destination.pk}/"
    assert client.post(f"{url}pause/").status_code == 200
    assert Destination.objects.get(pk=destination.pk).paused
    assert client.post(f"{url}resume/").status_code == 200
    assert not Destination.objects.get(pk=destination.pk).paused
    Destination.objects.filter(pk=destination.pk).update(position=3, last_sent_sequence=3)
    response = client.post(f"{url}replay/", {"from_position": "2"}, format="json")
    assert response.json() == {"position": 1}
    assert Destination.objects.get(pk=destination.pk).last_sent_sequence is None
    for bad in (
        {},
        {"from_position": "-1"},
        {"from_time": "yesterday"},
        {"from_time": "2026-01-01T00:00:00Z", "from_position": "1"},
    ):
        refused = client.post(f"{url}replay/", bad, format="json")
        assert refused.status_code == 400, bad
        assert refused.json()["detail"]
    health = client.get(f"{url}health/").json()
    # Every event sealed after position 1 matches the empty filter.
    assert (health["position"], health["lag_events"]) == (1, health["head"] - 1)
    assert health["lag_events"] >= 2 and health["lag_seconds"] > 0


def test_the_api_refuses_who_may_not(api_as, nobody, auditor, make_events) -> None:
    destination = make_destination(transport=Transport.FILE)
    url = f"{API}{destination.pk}/"
    for user in (None, nobody, auditor):
        client = api_as(user)
        assert client.get(API).status_code in (401, 403)
        assert client.post(API, HTTP, format="json").status_code in (401, 403)
        assert client.post(f"{url}pause/").status_code in (401, 403)
    viewer = api_as(grant(nobody, "streams.view_destination"))
    assert viewer.get(API).status_code == 200
    assert viewer.get(f"{url}health/").status_code == 200
    assert viewer.post(f"{url}pause/").status_code == 403
    assert viewer.post(f"{url}replay/", {"from_position": "1"}, format="json").status_code == 403
    assert viewer.delete(url).status_code == 403
    assert not Destination.objects.get(pk=destination.pk).paused


def test_the_pages_list_create_and_refuse_bad_fields(admin_user, tmp_path: Path) -> None:
    browser = _browser(admin_user)
    page = browser.get(PAGES)
    assert page.status_code == 200 and "No destinations" in page.content.decode()
    bad = browser.post(
        f"{PAGES}new/",
        {
            **HTTP,
            "url": "nope",
            "format": "leef",
            "filter": "action ==",
            "batch_size": 100,
            "max_bytes": 1048576,
            "backups": 5,
            "auth_header_name": "Authorization",
        },
    )
    html = bad.content.decode()
    assert bad.status_code == 400
    assert "is not a valid http:// or https:// URL" in html
    assert "leef is not one of the available choices" in html
    assert "does not parse" in html
    good = browser.post(
        f"{PAGES}new/",
        {
            **HTTP,
            "batch_size": 100,
            "max_bytes": 1048576,
            "backups": 5,
            "auth_header_name": "Authorization",
        },
    )
    assert good.status_code == 302
    destination = Destination.objects.get(name="splunk")
    assert secrets.decrypt(destination.signing_key) == "receiver-signing-key"
    edit = browser.get(f"{PAGES}{destination.pk}/").content.decode()
    assert "very-secret" not in edit and "receiver-signing-key" not in edit
    listing = browser.get(PAGES).content.decode()
    assert 'data-stream="splunk"' in listing and "very-secret" not in listing
    assert browser.post(f"{PAGES}{destination.pk}/pause/").status_code == 302
    assert Destination.objects.get(pk=destination.pk).paused
    assert browser.post(f"{PAGES}{destination.pk}/pause/", {"resume": "1"}).status_code == 302
    assert not Destination.objects.get(pk=destination.pk).paused
    replay = browser.post(f"{PAGES}{destination.pk}/replay/", {"from_position": "x"})
    assert replay.status_code == 400 and "from_position must be" in replay.content.decode()
    assert (
        browser.post(f"{PAGES}{destination.pk}/replay/", {"from_position": "1"}).status_code == 302
    )
    Destination.objects.filter(pk=destination.pk).update(position=5)
    replayed = browser.post(
        f"{PAGES}{destination.pk}/replay/", {"from_position": "", "from_time": "2000-01-01T00:00"}
    )
    assert replayed.status_code == 302
    assert Destination.objects.get(pk=destination.pk).position == 0


def test_the_pages_refuse_who_may_not(nobody) -> None:
    destination = make_destination(transport=Transport.FILE)
    anonymous = Client()
    assert anonymous.get(PAGES).status_code == 302
    browser = _browser(nobody)
    assert browser.get(PAGES).status_code == 403
    assert browser.get(f"{PAGES}new/").status_code == 403
    assert browser.get(f"{PAGES}{destination.pk}/").status_code == 403
    assert browser.post(f"{PAGES}{destination.pk}/pause/").status_code == 403
    assert (
        browser.post(f"{PAGES}{destination.pk}/replay/", {"from_position": "1"}).status_code == 403
    )
    assert browser.post(f"{PAGES}{destination.pk}/delete/").status_code == 403
    viewer = _browser(grant(nobody, "streams.view_destination"))
    assert viewer.get(PAGES).status_code == 200
    assert viewer.post(f"{PAGES}{destination.pk}/pause/").status_code == 403
    assert not Destination.objects.get(pk=destination.pk).paused
    assert Destination.objects.filter(pk=destination.pk).exists()


def test_saving_the_configuration_never_moves_the_position_back(make_events) -> None:
    destination = make_destination(transport=Transport.FILE)
    read_by_a_page = Destination.objects.get(pk=destination.pk)
    Destination.objects.filter(pk=destination.pk).update(position=42, last_sent_sequence=41)
    read_by_a_page.batch_size = 7
    read_by_a_page.save_configuration()
    saved = Destination.objects.get(pk=destination.pk)
    assert (saved.batch_size, saved.position, saved.last_sent_sequence) == (7, 42, 41)


def test_a_saved_search_becomes_the_filter(api_as, admin_user, nobody, tmp_path: Path) -> None:
    from searches.models import SavedSearch

    saved = SavedSearch.objects.create(
        name="failures",
        query='app = "tests"',
        filters={"actions": ["login_failed"]},
        owner=admin_user,
    )
    SavedSearch.objects.create(name="theirs", query='app = "x"', owner=nobody)
    broken = SavedSearch.objects.create(name="broken", query="nope = 1", owner=admin_user)
    client = api_as(admin_user)
    response = client.post(
        API, {"name": "by-name", "transport": "file", "saved_search": "failures"}, format="json"
    )
    assert response.status_code == 201, response.json()
    expected = '(app = "tests") and (action in ("login_failed"))'
    assert response.json()["filter"] == expected
    for refused, words in (("theirs", "no saved search 'theirs'"), (str(broken.pk), "no longer")):
        response = client.post(
            API, {"name": "x", "transport": "file", "saved_search": refused}, format="json"
        )
        assert response.status_code == 400 and words in response.json()["saved_search"][0]
    browser = _browser(admin_user)
    form = {
        "name": "by-page",
        "transport": "file",
        "format": "api",
        "batch_size": 100,
        "max_bytes": 1048576,
        "backups": 5,
        "auth_header_name": "Authorization",
        "storage_alias": "default",
        "http_shape": "json",
        "saved_search": str(saved.pk),
    }
    page = browser.post(f"{PAGES}new/", form)
    assert page.status_code == 302
    assert Destination.objects.get(name="by-page").filter == expected
    refused = browser.post(f"{PAGES}new/", {**form, "name": "nope", "saved_search": broken.pk})
    assert refused.status_code == 400 and "no longer works" in refused.content.decode()


def test_a_created_destination_is_not_answered_with_its_receivers_address_as_location(
    api_as, admin_user
) -> None:
    # DRF puts a "url" field into the Location header of a 201; here that field is the
    # receiver's address, and for a file destination any text (the fuzzer sent line breaks).
    created = api_as(admin_user).post(API, HTTP, format="json")
    assert created.status_code == 201 and "Location" not in created.headers
    odd = {"name": "odd", "format": "api", "transport": "file", "url": "ô\x19f\n|É"}
    answer = api_as(admin_user).post(API, odd, format="json")
    assert answer.status_code in (201, 400) and "Location" not in answer.headers
