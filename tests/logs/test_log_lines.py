"""What the processes log: one JSON schema, the request id the stored event carries, trace
lines for searches, capture and sealing, and never a secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from auditlog.models import Event
from directory.models import User
from tests.notifications.conftest import WebhookServer

Lines = Callable[[], list[dict[str, Any]]]
SECRET = "hunter2-correct-horse-battery"
pytestmark = pytest.mark.django_db


def test_an_api_write_logs_the_request_id_its_event_stores(
    log_lines: Lines, admin_user: User, api_as: Callable[[User | None], APIClient]
) -> None:
    target = User.objects.create_user("target", "target@example.com", "pw-target-123456")
    response = api_as(admin_user).patch(
        f"/api/v3/core/users/{target.pk}/", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    event = Event.objects.filter(action="model_updated").latest("created")
    request_id = event.context["http_request"]["request_id"]
    assert response["X-Request-ID"] == request_id
    [recorded] = [line for line in log_lines() if line.get("event_pk") == str(event.pk)]
    assert recorded["event"] == "event recorded"
    assert recorded["request_id"] == request_id
    assert recorded["username"] == admin_user.username  # a Bearer token's user
    assert recorded["action"] == "model_updated"
    assert recorded["logger"] == "auditlog.services"
    assert recorded["level"] == "info"
    assert recorded["process"] == "web"
    assert recorded["timestamp"].endswith("Z")
    finished = [line for line in log_lines() if line["event"] == "request_finished"]
    assert finished[-1]["request_id"] == request_id
    assert finished[-1]["username"] == admin_user.username


def test_a_secret_in_a_logged_request_never_appears_in_a_log_line(
    log_lines: Lines, admin_user: User, make_token: Callable[..., str]
) -> None:
    token = make_token(admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        f"/api/v3/events/events/?password={SECRET}",
        {"action": "custom_signup", "app": "tests", "context": {"password": SECRET}},
        format="json",
    )
    assert response.status_code == 201, response.content
    bad = client.get(f"/api/v3/events/events/?search=nonsense%20%3D&token={SECRET}")
    assert bad.status_code == 400
    text = "\n".join(str(line) for line in log_lines())
    assert "event recorded" in text and "request_finished" in text
    assert SECRET not in text
    assert token not in text


def test_trace_shows_the_sql_of_a_search(
    log_lines: Lines, admin_user: User, api_as: Callable[[User | None], APIClient]
) -> None:
    response = api_as(admin_user).get('/api/v3/events/events/?search=action = "login"')
    assert response.status_code == 200
    [search] = [line for line in log_lines() if line["logger"] == "auditlog.search"]
    assert search["level"] == "trace"
    assert "SELECT" in search["sql"] and "login" in search["sql"]
    assert search["request_id"] == response["X-Request-ID"]


def test_trace_says_why_a_change_was_or_was_not_recorded(
    log_lines: Lines, capture_path: str
) -> None:
    from auditlog.context import audit_ignore

    user = User.objects.create_user("traced", "traced@example.com", "pw-traced-123456")
    with audit_ignore():
        user.name = "quiet"
        user.save()
    decisions = [line["event"] for line in log_lines() if line["logger"] == "auditlog.capture"]
    recorded = "capture: recorded model_created"
    if capture_path == "triggers":
        recorded += " (database triggers)"
    assert recorded in decisions
    assert "capture: not recorded: capture is ignored (audit_ignore)" in decisions


def test_a_change_the_triggers_record_is_logged_with_its_event_pk(
    log_lines: Lines, admin_user: User, capture_path: str
) -> None:
    from auditlog.capture import acting_user

    if capture_path != "triggers":
        pytest.skip("the signal path's line is the service's (the test above)")
    with acting_user(admin_user):
        user = User.objects.create_user("logged", "logged@example.com", "pw-logged-123456")
        User.objects.filter(username__startswith="logged").update(name="Logged")
        User.objects.filter(pk=user.pk).delete()
    lines = [line for line in log_lines() if line["logger"] == "auditlog.services"]
    by_pk = {line.get("event_pk"): line for line in lines}
    events = Event.objects.filter(context__model__pk=user.pk).order_by("created")
    assert [event.action for event in events] == ["model_created", "model_updated", "model_deleted"]
    for event in events:  # each single-row change's line names the event the trigger wrote
        assert by_pk[str(event.pk)]["event"] == "event recorded"
        assert by_pk[str(event.pk)]["action"] == event.action


def test_trace_shows_the_sealing_steps(log_lines: Lines) -> None:
    from auditlog.chain.sealing import seal_pending
    from auditlog.services import record_event

    event = record_event(action="custom_sealed", app="tests")
    seal_pending()
    steps = [line for line in log_lines() if line["logger"] == "auditlog.chain.sealing"]
    assert any(line["event"].startswith("seal: 1 queued, 1 found") for line in steps), steps
    [linked] = [line for line in steps if line.get("event_pk") == str(event.pk)]
    assert linked["event"].startswith("seal: linked event at ")
    assert len(linked["chain_hash"]) == 64


def test_stdlib_and_structlog_lines_share_one_schema(log_lines: Lines) -> None:
    import logging

    import structlog

    logging.getLogger("tests.stdlib").warning("from %s", "stdlib", extra={"api_key": SECRET})
    structlog.get_logger("tests.structlog").warning("from structlog", password=SECRET)
    stdlib, native = (line for line in log_lines() if line["logger"].startswith("tests."))
    assert (
        list(stdlib)[:5]
        == list(native)[:5]
        == [
            "timestamp",
            "level",
            "logger",
            "process",
            "event",
        ]
    )
    assert stdlib["event"] == "from stdlib"
    assert SECRET not in str(stdlib) + str(native)


def test_trace_shows_outgoing_notification_requests_with_secrets_masked(
    log_lines: Lines, webhook_server: WebhookServer
) -> None:
    from notifications.transports import post_json

    url = webhook_server.url(f"/hooks/{SECRET}")
    post_json(url, {"title": "hello", "context": {"password": SECRET, "user": "ana"}})
    assert webhook_server.bodies()[0]["context"]["user"] == "ana"
    lines = [line for line in log_lines() if line["logger"] == "notifications.transports"]
    sent, answered = lines
    assert sent["event"] == f"webhook POST http://127.0.0.1:{webhook_server.port}"
    assert sent["body"]["context"]["user"] == "ana"
    assert answered["event"] == "webhook answered 200"
    assert SECRET not in str(lines)
