"""The recording service's batch door: all or nothing, redacted, and what an importer of
another system's events needs (identity kept, nothing added twice)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from auditlog import chain
from auditlog.models import Event, EventChainLink
from auditlog.sanitize import MASK
from auditlog.services import (
    EventItem,
    EventsRejected,
    record_event,
    record_events,
    validate_event_item,
)

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def imported(index: int, **extra: Any) -> EventItem:
    item: EventItem = {
        "pk": str(uuid.UUID(int=index + 1)),
        "action": "login",
        "app": "authentik.events",
        "user": {"username": f"u{index}", "pk": index, "email": ""},
        "context": {"password": "hunter2", "imported": {"source": "authentik"}},
        "client_ip": "81.2.69.142",
        "created": (LONG_AGO + timedelta(minutes=index)).isoformat(),
    }
    item.update(extra)  # type: ignore[typeddict-item]
    return item


def test_a_batch_is_written_redacted_with_server_set_identity() -> None:
    rows = record_events(
        [{"action": "login", "app": "vpn", "context": {"token": "abc"}, "pk": "nope"}] * 2
    )
    assert len(rows) == 2 and rows[0].event_uuid != rows[1].event_uuid
    stored = Event.objects.get(pk=rows[0].event_uuid)
    assert stored.context == {"token": MASK}
    assert timezone.now() - stored.created < timedelta(minutes=1)
    assert stored.brand == rows[0].brand  # the default brand


def test_an_import_keeps_pk_and_created_and_marks_its_source() -> None:
    [row] = record_events([imported(0)], keep_identity=True)
    stored = Event.objects.get(pk=uuid.UUID(int=1))
    assert stored.pk == row.event_uuid
    assert stored.created == LONG_AGO
    assert stored.context == {"password": MASK, "imported": {"source": "authentik"}}
    assert stored.expires > stored.created  # created plus the retention


def test_importing_the_same_events_again_adds_nothing() -> None:
    first = record_events([imported(index) for index in range(3)], keep_identity=True)
    again = record_events(
        [imported(index) for index in range(4)] + [imported(3)], keep_identity=True
    )
    assert len(first) == 3
    assert [row.event_uuid for row in again] == [uuid.UUID(int=4)]
    assert Event.objects.filter(app="authentik.events").count() == 4


def test_an_import_keeps_a_given_expiry() -> None:
    expires = (LONG_AGO + timedelta(days=1)).isoformat()
    record_events([imported(0, expires=expires)], keep_identity=True)
    assert Event.objects.get(pk=uuid.UUID(int=1)).expires == LONG_AGO + timedelta(days=1)


def test_one_bad_event_refuses_the_whole_batch_naming_each_problem() -> None:
    items: list[Any] = [imported(0), imported(1, created="yesterday"), imported(2, pk="x"), 7]
    with pytest.raises(EventsRejected) as refused:
        record_events(items, keep_identity=True)
    assert refused.value.errors == {
        "1": {"created": ["Datetime has wrong format. Use ISO 8601."]},
        "2": {"pk": ["Must be a valid UUID."]},
        "3": {"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]},
    }
    assert not Event.objects.exists()


def test_a_batch_asks_for_one_seal_once_it_commits(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.AUDIT_CHAIN_KEY = "test-chain-key-that-is-long-enough-0123456789"
    chain.sealing._next_enqueue = 0.0
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rows = record_events([imported(index) for index in range(3)], keep_identity=True)
    chain.sealing._next_enqueue = 0.0
    assert [getattr(c, "__name__", "") for c in callbacks].count("enqueue_seal") == 1
    assert EventChainLink.objects.filter(event_uuid__in=[r.event_uuid for r in rows]).count() == 3


def test_a_single_event_asks_for_a_seal_once_it_commits(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.AUDIT_CHAIN_KEY = "test-chain-key-that-is-long-enough-0123456789"
    chain.sealing._next_enqueue = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        event = record_event(action="login", app="tests")
    chain.sealing._next_enqueue = 0.0
    assert EventChainLink.objects.filter(event_uuid=event.pk).exists()


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        ({}, {"action": ["This field is required."], "app": ["This field is required."]}),
        ({"action": " ", "app": "x"}, {"action": ["This field may not be blank."]}),
        ({"action": "login", "app": None}, {"app": ["This field may not be null."]}),
        ({"action": ["login"], "app": "x"}, {"action": ["Not a valid string."]}),
        (
            {"action": "login", "app": "x" * 256},
            {"app": ["Ensure this field has no more than 255 characters."]},
        ),
        ({"action": "lo\x00gin", "app": "x"}, {"action": ["Null characters are not allowed."]}),
        ({"action": "login", "app": "x", "context": []}, {"context": ["Expected a JSON object."]}),
        (
            {"action": "login", "app": "x", "client_ip": "300.1.1.1"},
            {"client_ip": ["'300.1.1.1' is not a valid IP address."]},
        ),
        (
            {"action": "teleport", "app": "x"},
            {"action": ["'teleport' is not a known action; use one of actions/ or custom_<name>."]},
        ),
        (
            {"action": "login", "app": "x", "colour": 1},
            {"non_field_errors": ["Unknown fields: colour."]},
        ),
    ],
)
def test_the_one_validation_and_its_messages(item: Any, errors: dict[str, Any]) -> None:
    problems, event = validate_event_item(item)
    assert problems == errors and event is None


def test_the_single_endpoint_says_what_the_batch_endpoint_says(
    api_as: Any, admin_user: Any
) -> None:
    client = api_as(admin_user)
    bad = {"action": "login", "app": "x" * 256, "client_ip": "1.2.3"}
    single = client.post("/api/v3/events/events/", bad, format="json")
    batch = client.post("/api/v3/events/events/bulk/", [bad], format="json")
    assert single.status_code == batch.status_code == 400
    assert single.json() == batch.json()["0"]


def test_the_single_endpoint_ignores_unknown_fields(api_as: Any, admin_user: Any) -> None:
    body = {"action": "login", "app": "x", "colour": "blue", "pk": "mine"}
    response = api_as(admin_user).post("/api/v3/events/events/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["pk"] != "mine"


def test_recording_an_action_no_event_may_have_is_refused() -> None:
    with pytest.raises(EventsRejected) as refused:
        record_event(action="no spaces allowed", app="tests")
    assert "is not a known action" in refused.value.errors["action"][0]
    assert not Event.objects.exists()
