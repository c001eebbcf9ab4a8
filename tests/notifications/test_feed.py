"""The rules hang on the one place that sees every committed event: the sealer's feed
(``auditlog.feed.events_sealed``), whatever way the event entered, raw SQL included."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.utils import timezone

from auditlog import chain
from auditlog.models import Event, EventChainLink
from auditlog.services import record_event
from notifications.models import DeliveryStatus, Notification, NotificationDelivery
from notifications.tasks import dispatch_notifications, dispatch_notifications_batch

pytestmark = pytest.mark.django_db


def insert_behind_the_application(**values: Any) -> str:
    """One INSERT of an event as another program would write it: no model, no signal, no
    service; only the database's own trigger sees it. Returns the event's pk."""
    pk = uuid4()
    now = timezone.now()
    row = {
        "event_uuid": pk,
        "user": json.dumps(values.get("user", {})),
        "action": values["action"],
        "app": values["app"],
        "context": json.dumps(values.get("context", {})),
        "client_ip": None,
        "created": now,
        "brand": "{}",
        "expires": now + timedelta(days=30),
        "expiring": True,
    }
    params = [
        # Only the database's own representation of a UUID and a time (text on SQLite).
        Event._meta.get_field(name).get_db_prep_save(value, connection)
        if name in {"event_uuid", "created", "expires"}
        else value
        for name, value in row.items()
    ]
    columns = ", ".join(connection.ops.quote_name(name) for name in row)
    placeholders = ", ".join(["%s"] * len(row))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO auditlog_event ({columns}) VALUES ({placeholders})",  # noqa: S608
            params,
        )
    return str(pk)


def test_an_event_inserted_by_raw_sql_is_sealed_and_notifies_a_matching_rule(
    make_rule, security_group, django_capture_on_commit_callbacks
) -> None:
    group, (ana, ben, _) = security_group
    rule = make_rule('action = "login_failed" and app = "outside"', destination_group=group)
    pk = insert_behind_the_application(
        action="login_failed", app="outside", context={"message": "Failed login from outside"}
    )
    assert not Notification.objects.exists()  # nothing in the application saw the insert

    with django_capture_on_commit_callbacks(execute=True):
        chain.seal_pending()  # the scheduler's run, every minute

    assert EventChainLink.objects.filter(event_uuid=pk).exists()
    assert chain.verify().ok
    deliveries = NotificationDelivery.objects.filter(rule=rule, event_uuid=pk)
    assert sorted(deliveries.values_list("user__username", flat=True)) == ["ana", "ben"]
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    notifications = Notification.objects.filter(event_id=pk)
    assert sorted(n.user_id for n in notifications) == sorted([ana.pk, ben.pk])
    assert {n.body for n in notifications} == {"Failed login from outside"}


def test_the_rules_see_an_event_once_it_is_sealed_not_when_it_is_saved(
    make_rule, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    make_rule('action = "login_failed"')
    batches: list[list[str]] = []
    singles: list[str] = []
    monkeypatch.setattr(dispatch_notifications_batch, "delay", batches.append)
    monkeypatch.setattr(dispatch_notifications, "delay", singles.append)
    with django_capture_on_commit_callbacks(execute=False):  # committed, the seal not run yet
        events = [record_event(action="login_failed", app="tests") for _ in range(3)]
        record_event(action="login", app="tests")  # no rule may match it: never offered
    assert batches == [] and singles == []

    with django_capture_on_commit_callbacks(execute=True):
        chain.seal_pending()
    # One task for the sealed batch, in chain order, not one per event.
    in_chain_order = [
        str(pk)
        for pk in EventChainLink.objects.filter(event_uuid__in=[e.pk for e in events])
        .order_by("sequence")
        .values_list("event_uuid", flat=True)
    ]
    assert batches == [in_chain_order]
    assert singles == []


def test_no_post_save_receiver_of_event_dispatches() -> None:
    receivers = post_save._live_receivers(Event)  # type: ignore[attr-defined]
    functions = [receiver for group in receivers for receiver in group] if receivers else []
    modules = {getattr(function, "__module__", "") for function in functions}
    assert not any(module.startswith("notifications") for module in modules), modules
