"""Batch ingestion: all or nothing, sanitised, fast path to the database."""

from __future__ import annotations

import pytest
from django.utils import timezone

from auditlog.models import Event
from auditlog.sanitize import MASK
from notifications.models import NotificationRule
from tests.conftest import grant

pytestmark = pytest.mark.django_db

BULK = "/api/v3/events/events/bulk/"


def batch(count: int, **overrides) -> list[dict]:
    return [
        {
            "action": "login",
            "app": "vpn",
            "user": {"username": f"u{index}", "pk": index, "email": ""},
            "context": {"index": index, "password": f"secret-{index}"},
            "client_ip": "81.2.69.142",
            **overrides,
        }
        for index in range(count)
    ]


def test_a_batch_is_stored_sanitised_with_server_set_fields(api_as, admin_user) -> None:
    client = api_as(admin_user)
    before = Event.objects.count()
    response = client.post(BULK, batch(50, created="2001-01-01T00:00:00Z"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 50 and len(body["pks"]) == 50
    assert Event.objects.count() == before + 50
    stored = Event.objects.get(pk=body["pks"][7])
    assert stored.context == {"index": 7, "password": MASK}
    assert stored.user["username"] == "u7"
    assert timezone.now() - stored.created < timezone.timedelta(minutes=1)
    assert stored.expires > timezone.now()
    assert "secret-7" not in str(list(Event.objects.values_list("context", flat=True)))


def test_one_bad_event_refuses_the_whole_batch(api_as, admin_user) -> None:
    items = batch(10)
    items[3]["action"] = "teleport"
    items[6]["client_ip"] = "999.0.0.1"
    items[8] = "not an object"
    client = api_as(admin_user)
    before = Event.objects.count()
    response = client.post(BULK, items, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"3", "6", "8"}
    assert "not a known action" in errors["3"]["action"][0]
    assert "not a valid IP address" in errors["6"]["client_ip"][0]
    assert Event.objects.count() == before


@pytest.mark.parametrize("body", [[], {"action": "login"}, "text"])
def test_anything_but_a_non_empty_array_is_refused(api_as, admin_user, body) -> None:
    response = api_as(admin_user).post(BULK, body, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_batches_are_bounded(api_as, admin_user, monkeypatch) -> None:
    from auditlog import ingest

    monkeypatch.setattr(ingest, "MAX_BATCH", 5)
    response = api_as(admin_user).post(BULK, batch(6), format="json")
    assert response.status_code == 400
    assert "At most 5 events per batch." in response.json()["non_field_errors"]


def test_batch_ingestion_needs_the_add_permission(api_as, auditor, nobody) -> None:
    assert api_as(auditor).post(BULK, batch(1), format="json").status_code == 403
    assert api_as(nobody).post(BULK, batch(1), format="json").status_code == 403
    assert (
        api_as(grant(nobody, "auditlog.add_event")).post(BULK, batch(1), format="json").status_code
        == 201
    )


def test_ingested_events_reach_the_notification_rules(
    api_as, admin_user, django_capture_on_commit_callbacks
) -> None:
    from auditlog import chain
    from directory.models import Group
    from notifications.models import Notification

    group = Group.objects.get(is_superuser=True)
    NotificationRule.objects.create(
        name="vpn-failures",
        match='app = "vpn" and action = "login_failed"',
        destination_group=group,
    )
    chain.sealing._next_enqueue = 0.0  # no debounce left over from the set-up's own events
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(admin_user).post(BULK, batch(2, action="login_failed"), format="json")
    assert response.status_code == 201
    assert Notification.objects.filter(user=admin_user, event__app="vpn").count() == 2


def test_an_ingested_batch_is_chained_once_it_commits(
    api_as, admin_user, django_capture_on_commit_callbacks
) -> None:
    from auditlog import chain

    client = api_as(admin_user)
    chain.sealing._next_enqueue = 0.0  # no debounce left over from the set-up's own events
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(BULK, batch(20), format="json")
    assert response.status_code == 201, response.content
    pks = response.json()["pks"]
    from auditlog.models import EventChainLink

    sealed = EventChainLink.objects.filter(event_uuid__in=pks)
    assert sealed.count() == 20
    assert chain.verify().ok


def test_a_batch_is_handed_to_the_rules_as_one_task(
    api_as, admin_user, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    """One queued message for the events some rule may match, not one per event."""
    from auditlog import chain
    from directory.models import Group
    from notifications import tasks

    NotificationRule.objects.create(
        name="failures",
        match='action = "login_failed"',
        destination_group=Group.objects.get(is_superuser=True),
    )
    calls: list[list[str]] = []
    monkeypatch.setattr(tasks.dispatch_notifications_batch, "delay", calls.append)
    monkeypatch.setattr(tasks.dispatch_notifications, "delay", lambda *args: calls.append(["one"]))
    body = [*batch(3, action="login_failed"), *batch(2, action="login")]
    chain.sealing._next_enqueue = 0.0  # no debounce left over from the set-up's own events
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(admin_user).post(BULK, body, format="json")
    assert response.status_code == 201, response.content
    failed = response.json()["pks"][:3]
    # The rules get the sealed batch in chain order (created, then pk), not the request's.
    assert [sorted(call) for call in calls] == [sorted(failed)]


def test_the_schema_bounds_the_batch_as_the_endpoint_does(admin_client) -> None:
    from auditlog.ingest import MAX_BATCH

    schema = admin_client.get("/api/v3/schema/", {"format": "json"}).json()
    body = schema["paths"][BULK]["post"]["requestBody"]
    array = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert (array["minItems"], array["maxItems"]) == (1, MAX_BATCH)
    assert admin_client.post(BULK, [], content_type="application/json").status_code == 400
