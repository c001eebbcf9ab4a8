"""Every door by which events enter (capture, authentication signals, the API single and
batch, the middleware, the chain's report, notifications, exports, demo data) records through
the one recording service, and the redaction policy runs exactly once per event, in it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import SuspiciousOperation
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory

from auditlog import chain, sanitize
from auditlog.demo import load_demo_data
from auditlog.integrity import verify_and_report
from auditlog.middleware import AuditMiddleware
from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from auditlog.services import record_event
from directory.models import Group, User
from exports.services import build_export, request_export
from notifications.deliveries import record_failure
from notifications.models import NotificationDelivery

pytestmark = pytest.mark.django_db

SERVICE = Path(sys.modules["auditlog.services"].__file__ or "").resolve()


@dataclass
class Redactions:
    """Every call of the redaction policy: who called it, and the context it was given."""

    callers: list[Path] = field(default_factory=list)
    contexts: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.callers.clear()
        self.contexts.clear()


@pytest.fixture
def redactions(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Redactions:
    """Count the calls of ``sanitize.redact_event``, wherever a module bound it. Model changes
    are recorded by the signal path here: on PostgreSQL the triggers are the one deliberate
    second door (they apply the policy's SQL port, tests/auditlog/test_db_masking.py)."""
    settings.AUDIT_DB_CAPTURE = False
    original = sanitize.redact_event
    seen = Redactions()

    def counting(**kwargs: Any) -> Any:
        seen.callers.append(Path(sys._getframe(1).f_code.co_filename).resolve())
        seen.contexts.append(kwargs["context"])
        return original(**kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "redact_event", None) is original:
            monkeypatch.setattr(module, "redact_event", counting)
    return seen


@pytest.fixture
def chain_key(settings: Any) -> Iterator[None]:
    settings.AUDIT_CHAIN_KEY = "test-chain-key-that-is-long-enough-0123456789"
    chain.sealing._next_enqueue = 0.0
    yield
    chain.sealing._next_enqueue = 0.0


def through_the_door(redactions: Redactions, door: Callable[[], object]) -> list[Event]:
    """Run ``door``; return the events it wrote, after checking that each was redacted
    exactly once, by the recording service."""
    before = set(Event.objects.values_list("pk", flat=True))
    redactions.clear()
    door()
    new = list(Event.objects.exclude(pk__in=before))
    assert new, "the door recorded nothing"
    assert len(redactions.callers) == len(new), (len(redactions.callers), len(new))
    assert set(redactions.callers) == {SERVICE}
    return new


def test_capture_of_a_model_change(redactions: Redactions) -> None:
    events = through_the_door(redactions, lambda: Group.objects.create(name="auditors-2"))
    assert [event.action for event in events] == [EventAction.MODEL_CREATED]


def test_the_authentication_signals(redactions: Redactions, client: Client) -> None:
    User.objects.create_user("ana", "ana@example.com", "correct-password-1")
    [login] = through_the_door(
        redactions, lambda: client.login(username="ana", password="correct-password-1")
    )
    assert login.action == EventAction.LOGIN
    request = RequestFactory().post("/login/")
    [failed] = through_the_door(
        redactions, lambda: authenticate(request, username="ana", password="wrong-password-9")
    )
    assert failed.action == EventAction.LOGIN_FAILED
    assert failed.context["password"] == MASK
    [logout] = through_the_door(redactions, client.logout)
    assert logout.action == EventAction.LOGOUT


def test_the_api_single_create(redactions: Redactions, api_as: Any, admin_user: User) -> None:
    client = api_as(admin_user)
    body = {"action": "login", "app": "vpn", "context": {"password": "hunter2", "n": 1}}
    [event] = through_the_door(
        redactions, lambda: client.post("/api/v3/events/events/", body, format="json")
    )
    assert event.context == {"password": MASK, "n": 1}


def test_the_api_batch(redactions: Redactions, api_as: Any, admin_user: User) -> None:
    client = api_as(admin_user)
    body = [{"action": "login", "app": "vpn", "context": {"token": f"t{n}"}} for n in range(3)]
    events = through_the_door(
        redactions, lambda: client.post("/api/v3/events/events/bulk/", body, format="json")
    )
    assert len(events) == 3
    assert all(event.context == {"token": MASK} for event in events)


def test_the_middlewares_exception_event(redactions: Redactions, admin_user: User) -> None:
    middleware = AuditMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/somewhere/?password=hunter2")
    request.user = admin_user
    [event] = through_the_door(
        redactions,
        lambda: middleware.process_exception(request, SuspiciousOperation("bad host")),
    )
    assert event.action == EventAction.SUSPICIOUS_REQUEST
    assert event.context["message"] == "bad host"
    assert event.context["http_request"]["args"] == {"password": MASK}


def test_the_chains_report(redactions: Redactions, chain_key: None) -> None:
    for index in range(3):
        record_event(action="chain_test", app="tests", context={"n": index})
    chain.seal_pending()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auditlog_event SET app = 'forged' WHERE action = 'custom_chain_test'"
        )
    [report] = through_the_door(redactions, verify_and_report)
    assert report.action == EventAction.SYSTEM_TASK_EXCEPTION
    assert report.context["task"] == "verify_event_chain"


def test_demo_data(redactions: Redactions) -> None:
    events = through_the_door(redactions, lambda: load_demo_data(events=40, seed=5))
    assert len(events) >= 40
    failed = [event for event in events if event.action == EventAction.LOGIN_FAILED]
    assert all(event.context["password"] == MASK for event in failed)


def test_a_notification_delivery_that_fails_for_good(redactions: Redactions) -> None:
    user = User.objects.create_user("bob", "bob@example.com", "correct-password-1")
    delivery = NotificationDelivery.objects.create(user=user, body="hello", transport_name="hook")
    error = "HTTP 401 from https://hooks.example.com/?token=hunter2hunter2"
    [event] = through_the_door(redactions, lambda: record_failure(delivery, error))
    assert event.action == EventAction.CONFIGURATION_ERROR
    assert "hunter2hunter2" not in str(event.context)


def test_an_export_that_is_ready(redactions: Redactions, admin_user: User) -> None:
    export = request_export(user=admin_user, model=Event, query_params={})
    events = through_the_door(redactions, lambda: build_export(export.pk))
    assert [event.action for event in events] == [EventAction.EXPORT_READY]
    assert events[0].user["username"] == admin_user.username
