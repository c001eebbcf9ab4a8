"""Notification rules at work: from sealed events to deliveries.

* The rules subscribe to :data:`auditlog.feed.events_sealed`, the one place that sees every
  committed event, in chain order, however it entered (the recording service, a bulk
  ``COPY``, a database trigger or SQL behind the application's back). For each sealed batch,
  :func:`on_events_sealed` queues one task with the events some enabled rule may match (see
  :func:`~notifications.rules.wanted_actions`); a batch nobody may match queues nothing.
* :func:`dispatch_event` matches one event against every enabled rule in one query and
  creates one :class:`~notifications.models.NotificationDelivery` per transport and recipient
  (a rule without transports notifies in the drawer), each sent by its own task
  (:mod:`notifications.deliveries`).

Loop guard: events recorded by the pipeline itself never dispatch, whatever rule they match.
They carry the app :data:`PIPELINE_APP`: the pipeline records its own events with it, and any
other event written inside :func:`notification_pipeline` is stamped with it when it is saved,
so the mark travels with the row to whichever process seals it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from django.db import transaction

from auditlog.feed import SealedEvent
from auditlog.models import Event
from auditlog.sanitize import sanitize
from notifications.models import (
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
    TransportMode,
)
from notifications.rules import enabled_rules, matching_rules, may_match, recipients

# The app of the events the pipeline records. Stored in events since before notifications
# became an app of their own, so it keeps its old name.
PIPELINE_APP = "auditlog.notifications"

_in_pipeline: ContextVar[bool] = ContextVar("auditlog_notification_pipeline", default=False)


# --- The loop guard -----------------------------------------------------------------------------


@contextmanager
def notification_pipeline() -> Iterator[None]:
    """Events recorded in this block never dispatch notifications."""
    token = _in_pipeline.set(True)
    try:
        yield
    finally:
        _in_pipeline.reset(token)


def is_pipeline_event(event: Event) -> bool:
    return event.app == PIPELINE_APP


def mark_pipeline_event(sender: type[Event], instance: Event, raw: bool = False, **_: Any) -> None:
    """``pre_save`` of Event: a new event written inside :func:`notification_pipeline` is the
    pipeline's own (the app says so, for the dispatcher that sees it once it is sealed)."""
    if _in_pipeline.get() and not raw and instance._state.adding:
        instance.app = PIPELINE_APP


# --- Queueing -----------------------------------------------------------------------------------


def on_events_sealed(sender: Any, events: Sequence[SealedEvent], **_: Any) -> None:
    """Subscriber of :data:`auditlog.feed.events_sealed`: one dispatch task for the sealed
    batch's events that some enabled rule may match. Runs after the batch committed."""
    enqueue_dispatch_batch((event.pk, event.action) for event in events)


def enqueue_dispatch(event_id: str, action: str) -> None:
    """Queue :func:`dispatch_event` for one event, unless no enabled rule may match it."""
    if not may_match(action):
        return
    from notifications.tasks import dispatch_notifications

    dispatch_notifications.delay(event_id)


def enqueue_dispatch_batch(events: Iterable[tuple[str, str]]) -> None:
    """:func:`enqueue_dispatch` for many ``(event_id, action)``: one task for all those some
    enabled rule may match, rather than one message per event. The pipeline's own events are
    left out (one query, only when some event may match)."""
    wanted = [event_id for event_id, action in events if may_match(action)]
    if wanted:
        own = Event.objects.filter(pk__in=wanted, app=PIPELINE_APP).values_list("pk", flat=True)
        left_out = {str(pk) for pk in own}
        wanted = [event_id for event_id in wanted if event_id not in left_out]
    if not wanted:
        return
    from notifications.tasks import dispatch_notifications_batch

    dispatch_notifications_batch.delay(wanted)


# --- Matching and fan-out -----------------------------------------------------------------------


def dispatch_event(event_id: str) -> list[NotificationDelivery]:
    """Match one event against the enabled rules and queue a delivery per transport and
    recipient (``send_once``: the first recipient only). Returns the new deliveries; running
    it twice for an event queues nothing new. Events of the pipeline itself never dispatch."""
    with notification_pipeline():
        event = Event.objects.filter(pk=event_id).first()
        if event is None or is_pipeline_event(event):
            return []
        created: list[NotificationDelivery] = []
        with transaction.atomic():
            for rule in matching_rules(event, enabled_rules()):
                created += _fan_out(rule, event)
            for delivery in created:
                transaction.on_commit(partial(_enqueue_delivery, str(delivery.pk)))
        return created


def _fan_out(rule: NotificationRule, event: Event) -> list[NotificationDelivery]:
    users = recipients(rule, event)
    chosen: list[NotificationTransport | None] = list(rule.transports.all()) or [None]
    content = notification_content(rule, event)
    created = []
    for transport in chosen:
        for user in users[:1] if transport is not None and transport.send_once else users:
            delivery, new = NotificationDelivery.objects.get_or_create(
                event_uuid=event.pk,
                rule=rule,
                transport=transport,
                user=user,
                defaults={
                    **content,
                    "event_action": event.action,
                    "rule_name": rule.name,
                    "transport_name": transport.name if transport else "",
                    "mode": transport.mode if transport else TransportMode.LOCAL,
                },
            )
            if new:
                created.append(delivery)
    return created


def notification_content(rule: NotificationRule, event: Event) -> dict[str, Any]:
    """What every recipient is told: the rule's severity, the event's summary and link."""
    return {
        "severity": rule.severity,
        "body": sanitize(event.summary),
        "hyperlink": sanitize(event.hyperlink),
        "hyperlink_label": sanitize(event.hyperlink_label),
    }


def _enqueue_delivery(delivery_id: str) -> None:
    from notifications.tasks import deliver_notification

    deliver_notification.delay(delivery_id)
