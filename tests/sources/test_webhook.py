"""The receiver for authentik's notification webhook transport: the whole event (the README's
mapping) is stored idempotently by pk, authentik's default body is stored too, and a wrong or
missing token is refused with nothing stored."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from auditlog.models import Event
from sources.models import AuthentikSource
from sources.services import create_source
from tests.sources.conftest import authentik_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def source() -> tuple[AuthentikSource, str]:
    return create_source(name="ak", url="https://auth.example.com", token="api-token-1")


def post(body: Any, token: str | None, *, header: str = "HTTP_X_WEBHOOK_TOKEN") -> Any:
    extra = {header: token} if token is not None else {}
    return Client().post(
        "/api/v3/sources/authentik/ak/webhook/", body, content_type="application/json", **extra
    )


def imported() -> int:
    return Event.objects.filter(context__imported__source="ak").count()


def test_a_pushed_event_is_stored_once_with_its_identity(
    source: tuple[AuthentikSource, str],
) -> None:
    _, token = source
    event = authentik_event(timezone.now() - timedelta(minutes=5), 3)
    event["context"]["token"] = "pushed-secret-value"
    body = {"body": "login: {...}", "severity": "notice", "event": event}

    first = post(body, token)
    again = post(body, token)

    assert first.status_code == 201, first.content
    assert first.json() == {"stored": 1, "already_stored": 0}
    assert again.status_code == 200 and again.json() == {"stored": 0, "already_stored": 1}
    stored = Event.objects.get(pk=event["pk"])
    assert stored.action == "login" and stored.user["username"] == "user3"
    assert stored.created.isoformat() == event["created"]
    assert stored.context["token"] == "********************"
    assert stored.context["imported"] == {
        "source": "ak",
        "source_pk": event["pk"],
        "via": "webhook",
    }
    source[0].refresh_from_db()
    assert source[0].events_pushed == 1 and source[0].last_push is not None


def test_the_event_may_come_at_the_top_level_and_with_a_bearer_token(
    source: tuple[AuthentikSource, str],
) -> None:
    _, token = source
    event = authentik_event(timezone.now(), 4)
    answer = post(event, f"Bearer {token}", header="HTTP_AUTHORIZATION")
    assert answer.status_code == 201, answer.content
    assert Event.objects.filter(pk=event["pk"]).exists()


def test_authentiks_default_body_is_stored(source: tuple[AuthentikSource, str]) -> None:
    _, token = source
    body = {
        "body": "login_failed: {'username': 'bob'}",
        "severity": "alert",
        "user_email": "admin@example.com",
        "user_username": "akadmin",
        "event_user_email": "bob@example.com",
        "event_user_username": "bob",
    }
    answer = post(body, token)
    assert answer.status_code == 201, answer.content
    stored = Event.objects.get(action="custom_authentik_notification")
    assert stored.context["message"] == body["body"]
    assert stored.context["severity"] == "alert"
    assert stored.user == {"username": "bob", "email": "bob@example.com"}
    assert stored.context["imported"] == {"source": "ak", "via": "webhook"}


def test_a_newer_action_is_kept_as_a_custom_action_with_the_original(
    source: tuple[AuthentikSource, str],
) -> None:
    _, token = source
    event = authentik_event(timezone.now(), 5, action="user_created_in_2031")
    assert post({"event": event}, token).status_code == 201
    stored = Event.objects.get(pk=event["pk"])
    assert stored.action == "custom_user_created_in_2031"
    assert stored.context["imported"]["action"] == "user_created_in_2031"


@pytest.mark.parametrize(
    ("token", "status", "says"),
    [
        (None, 401, "Send the source's webhook token"),
        ("", 401, "Send the source's webhook token"),
        ("wrong", 403, "not valid for this source"),
    ],
)
def test_a_missing_or_wrong_token_is_refused_and_nothing_stored(
    source: tuple[AuthentikSource, str], token: str | None, status: int, says: str
) -> None:
    answer = post({"event": authentik_event(timezone.now(), 1)}, token)
    assert answer.status_code == status
    assert says in answer.json()["detail"]
    assert imported() == 0


def test_another_sources_token_is_refused(source: tuple[AuthentikSource, str]) -> None:
    _, other_token = create_source(name="other", url="https://b.example.com", token="x")
    answer = post({"event": authentik_event(timezone.now(), 1)}, other_token)
    assert answer.status_code == 403 and imported() == 0


def test_an_unknown_source_is_refused_like_a_wrong_token(
    source: tuple[AuthentikSource, str],
) -> None:
    answer = Client().post(
        "/api/v3/sources/authentik/nope/webhook/",
        {"event": authentik_event(timezone.now(), 1)},
        content_type="application/json",
        HTTP_X_WEBHOOK_TOKEN=source[1],
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not valid JSON"),
        ([1, 2], "Expected a JSON object"),
        ({"severity": "notice"}, "Neither an event"),
        ({"event": {"pk": "x", "action": "login", "app": "a"}}, "pk"),
        (
            {"event": {"pk": str(uuid.uuid4()), "action": "login", "app": "a", "client_ip": "no"}},
            "client_ip",
        ),
    ],
)
def test_bad_bodies_get_a_clear_400(
    source: tuple[AuthentikSource, str], body: Any, says: str
) -> None:
    data = body if isinstance(body, str) else __import__("json").dumps(body)
    answer = Client().post(
        "/api/v3/sources/authentik/ak/webhook/",
        data,
        content_type="application/json",
        HTTP_X_WEBHOOK_TOKEN=source[1],
    )
    assert answer.status_code == 400
    assert says in answer.json()["detail"]
    assert imported() == 0


def test_the_receiver_only_takes_posts(source: tuple[AuthentikSource, str]) -> None:
    answer = Client().get("/api/v3/sources/authentik/ak/webhook/", HTTP_X_WEBHOOK_TOKEN=source[1])
    assert answer.status_code == 405


def test_no_secret_of_the_corpus_gets_in_through_the_webhook(
    source: tuple[AuthentikSource, str], admin_user: Any, api_as: Any
) -> None:
    from tests.test_secrets import assert_clean, corpus

    _, token = source
    event = authentik_event(timezone.now(), 9)
    event["context"] = corpus()
    event["user"]["password"] = "Corpus-password-S3cr3t-0001"
    assert post({"event": event}, token).status_code == 201
    assert post({"body": json.dumps(corpus()), "severity": "alert"}, token).status_code == 201

    for stored in Event.objects.filter(context__imported__source="ak"):
        assert_clean("pushed event", json.dumps([stored.user, stored.context, stored.brand]))
    listed = api_as(admin_user).get("/api/v3/events/events/", {"page_size": 100})
    assert_clean("event list", listed.content.decode())
