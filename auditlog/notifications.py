"""Notification rules at work: matching events, choosing recipients, delivering.

* When an event is committed, :func:`on_event_saved` queues :func:`dispatch_event` through
  Celery, but only when an enabled rule may match it: when no rule is enabled nothing is
  queued, and when every enabled rule names its actions (``action = "x"``, ``action in
  (...)``) only events with those actions are. That knowledge is cached per process for
  :data:`RULES_CACHE_SECONDS` and dropped at once when a rule changes in this process (other
  processes notice within that time), so ordinary writes stay cheap.
* :func:`dispatch_event` matches the event against every enabled rule in one query and
  creates one :class:`~auditlog.models.NotificationDelivery` per transport and recipient
  (a rule without transports notifies in the drawer), each sent by its own task.
* :func:`deliver` makes one attempt at a delivery; the task retries transient failures with
  exponential backoff, and a final failure is kept on the delivery and recorded as a
  ``configuration_error`` event.

Loop guard: events recorded by the pipeline itself (inside :func:`notification_pipeline`, or
with the app :data:`PIPELINE_APP`) never dispatch, whatever rule they match.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Count, F
from django.utils import timezone
from djangoql.ast import Comparison, Const, Expression, List, Logical, Name, Node

from auditlog import transports
from auditlog.models import (
    DeliveryStatus,
    Event,
    EventAction,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationSeverity,
    NotificationTransport,
    TransportMode,
)
from auditlog.sanitize import get_user, model_to_dict, sanitize
from auditlog.search import EventSearchSchema, SearchError, compile_query, parse
from auditlog.services import record_event
from directory.models import User

logger = logging.getLogger(__name__)

PIPELINE_APP = "auditlog.notifications"
RULES_CACHE_SECONDS = 30.0
# A delivery left "sending" this long was abandoned by its worker and may be claimed again.
STALE_SENDING = timedelta(minutes=10)

_in_pipeline: ContextVar[bool] = ContextVar("auditlog_notification_pipeline", default=False)
_rules_lock = threading.Lock()
# (when it was read, the actions some enabled rule may match: None for any action)
_rules_cache: tuple[float, frozenset[str] | None] | None = None


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


# --- Queueing -----------------------------------------------------------------------------------


def wanted_actions() -> frozenset[str] | None:
    """The actions an enabled rule may match: ``None`` for any action, empty when no rule is
    enabled. Cached per process (see :func:`forget_rules`)."""
    global _rules_cache
    now = time.monotonic()
    cached = _rules_cache
    if cached is not None and now - cached[0] < RULES_CACHE_SECONDS:
        return cached[1]
    try:
        queries = list(
            NotificationRule.objects.filter(enabled=True).values_list("match", flat=True)
        )
    except DatabaseError:  # before the migration that adds rules
        queries = []
    wanted: frozenset[str] | None = frozenset()
    for query in queries:
        actions = actions_of(query)
        wanted = None if actions is None or wanted is None else wanted | actions
    with _rules_lock:
        _rules_cache = (now, wanted)
    return wanted


def has_enabled_rules() -> bool:
    return wanted_actions() != frozenset()


def may_match(action: str) -> bool:
    """Whether some enabled rule may match an event with this action."""
    wanted = wanted_actions()
    return wanted is None or action in wanted


def actions_of(query: str) -> frozenset[str] | None:
    """The actions an event needs to match ``query``, when the query says so through
    ``action = "x"`` or ``action in (...)`` joined by and/or; ``None``: it does not say."""
    try:
        return _required_actions(parse(query))
    except SearchError:
        return None


def _required_actions(node: Node) -> frozenset[str] | None:
    if not isinstance(node, Expression):
        return None
    operator = node.operator
    if isinstance(operator, Logical):
        left, right = _required_actions(node.left), _required_actions(node.right)
        if operator.operator == "and":
            return right if left is None else left if right is None else left & right
        return None if left is None or right is None else left | right
    if not (isinstance(node.left, Name) and node.left.parts == ["action"]):
        return None
    values: list[Any] | None = None
    if isinstance(operator, Comparison) and operator.operator == "=":
        values = [node.right.value] if isinstance(node.right, Const) else None
    elif isinstance(operator, Comparison) and operator.operator == "in":
        values = node.right.value if isinstance(node.right, List) else None
    if not values or not all(isinstance(value, str) for value in values):
        return None
    return frozenset(_action_value(value) for value in values)


def _action_value(text: str) -> str:
    """As the search does: a label (``Login Failed``) means its value (``login_failed``)."""
    by_label = {str(label).lower(): str(value) for value, label in EventAction.choices}
    return by_label.get(text.lower(), text)


def forget_rules(**_: Any) -> None:
    """Drop the cached :func:`wanted_actions` (a rule changed)."""
    global _rules_cache
    with _rules_lock:
        _rules_cache = None


def on_event_saved(
    sender: type[Event], instance: Event, created: bool, raw: bool = False, **_: Any
) -> None:
    """``post_save`` of Event: once the transaction commits, queue the dispatch."""
    if not created or raw or _in_pipeline.get() or is_pipeline_event(instance):
        return
    # robust: a broker that is down must not turn a committed write into an error.
    transaction.on_commit(
        partial(enqueue_dispatch, str(instance.pk), str(instance.action)), robust=True
    )


def enqueue_dispatch(event_id: str, action: str) -> None:
    """Queue :func:`dispatch_event` for the event, unless no enabled rule may match it."""
    if not may_match(action):
        return
    from auditlog.tasks import dispatch_notifications

    dispatch_notifications.delay(event_id)


def enqueue_dispatch_batch(events: Iterable[tuple[str, str]]) -> None:
    """:func:`enqueue_dispatch` for many ``(event_id, action)``: one task for all those some
    enabled rule may match, rather than one message per event."""
    wanted = [event_id for event_id, action in events if may_match(action)]
    if not wanted:
        return
    from auditlog.tasks import dispatch_notifications_batch

    dispatch_notifications_batch.delay(wanted)


# --- Matching and fan-out -----------------------------------------------------------------------


def enabled_rules() -> list[NotificationRule]:
    return list(
        NotificationRule.objects.filter(enabled=True)
        .select_related("destination_group")
        .prefetch_related("transports")
        .order_by("name")
    )


def matching_rules(event: Event, rules: list[NotificationRule]) -> list[NotificationRule]:
    """The rules whose query matches ``event``, decided by the database in one query.

    A rule whose stored query no longer compiles is skipped with a warning.
    """
    conditions = {}
    for index, rule in enumerate(rules):
        try:
            conditions[f"rule_{index}"] = Count(
                "pk", filter=compile_query(rule.match, EventSearchSchema)
            )
        except SearchError as exc:
            logger.warning("Notification rule %r has an invalid query: %s", rule.name, exc)
    if not conditions:
        return []
    counts = Event.objects.filter(pk=event.pk).aggregate(**conditions)
    return [rule for index, rule in enumerate(rules) if counts.get(f"rule_{index}")]


def recipients(rule: NotificationRule, event: Event) -> list[User]:
    """Active members of the destination group (by pk), then the event's user if asked for."""
    users: list[User] = []
    if rule.destination_group is not None:
        users += list(rule.destination_group.users.filter(is_active=True).order_by("pk"))
    if rule.destination_event_user:
        event_user = _event_user_pk(event)
        if event_user is not None and all(user.pk != event_user for user in users):
            users += list(User.objects.filter(pk=event_user, is_active=True))
    return users


def _event_user_pk(event: Event) -> int | None:
    pk = event.user.get("pk") if isinstance(event.user, dict) else None
    if isinstance(pk, bool):
        return None
    if isinstance(pk, int):
        return pk
    if isinstance(pk, str) and pk.isdigit():
        return int(pk)
    return None


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
    from auditlog.tasks import deliver_notification

    deliver_notification.delay(delivery_id)


# --- Delivering ---------------------------------------------------------------------------------


def deliver(delivery_id: str, *, final_attempt: bool = True) -> str:
    """Make one attempt at a delivery and return its status.

    Safe to run twice: only a waiting delivery is claimed. When the attempt fails and may be
    retried (and this is not the ``final_attempt``), the error is kept and
    :class:`~auditlog.transports.TransportError` is raised for the task to retry; otherwise the
    failure is final: kept on the delivery and recorded as a ``configuration_error`` event.
    """
    with notification_pipeline():
        now = timezone.now()
        claimed = (
            NotificationDelivery.objects.claimable(stale_before=now - STALE_SENDING)
            .filter(pk=delivery_id)
            .update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, updated=now)
        )
        delivery = (
            NotificationDelivery.objects.select_related("transport", "user", "rule")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or not claimed:
            return delivery.status if delivery is not None else ""
        try:
            _attempt(delivery)
        except transports.DeliverySkipped as exc:
            _finish(delivery, DeliveryStatus.SKIPPED, messages=[str(exc)])
        except Exception as exc:
            error = _as_transport_error(exc)
            if error.retryable and not final_attempt:
                _finish(delivery, DeliveryStatus.RETRYING, error=str(error), finished=False)
                if error is exc:
                    raise
                raise error from exc
            record_failure(delivery, str(error))
        return delivery.status


def _as_transport_error(exc: Exception) -> transports.TransportError:
    if isinstance(exc, transports.TransportError):
        return exc
    # Not the transport's fault, but the notification must not be lost: retry, then record.
    logger.exception("Unexpected error while delivering a notification")
    return transports.TransportError(f"Unexpected error: {type(exc).__name__}: {exc}")


def _attempt(delivery: NotificationDelivery) -> None:
    transport = delivery.transport
    if transport is None and delivery.mode != TransportMode.LOCAL:
        raise transports.TransportError("The transport was deleted.", retryable=False)
    local = transport is None or transport.mode == TransportMode.LOCAL
    if transport is not None:
        delivery.mode = transport.mode
    event = Event.objects.filter(pk=delivery.event_uuid).first() if delivery.event_uuid else None
    notification = build_notification(delivery, event)
    # A drawer notification and its delivery's status are written together; network sends are
    # never made inside a transaction.
    with transaction.atomic() if local else nullcontext():
        messages = transports.send(transport, notification)
        if local:
            delivery.notification = notification
        _finish(delivery, DeliveryStatus.SENT, messages=messages)


def build_notification(delivery: NotificationDelivery, event: Event | None) -> Notification:
    """The (unsaved) notification a delivery sends; ``event`` is None once it has expired."""
    return Notification(
        severity=delivery.severity,
        body=delivery.body,
        hyperlink=delivery.hyperlink,
        hyperlink_label=delivery.hyperlink_label,
        event=event,
        user=delivery.user,
    )


def _finish(
    delivery: NotificationDelivery,
    status: str,
    *,
    messages: list[str] | None = None,
    error: str = "",
    finished: bool = True,
) -> None:
    delivery.status = status
    delivery.last_error = error
    if messages is not None:
        delivery.messages = sanitize(messages)
    delivery.finished = timezone.now() if finished else None
    delivery.save(
        update_fields=[
            "status",
            "last_error",
            "messages",
            "finished",
            "notification",
            "mode",
            "updated",
        ]
    )


def record_failure(delivery: NotificationDelivery, error: str) -> None:
    """Mark a delivery failed for good and record a ``configuration_error`` event about it."""
    with notification_pipeline(), transaction.atomic():
        _finish(delivery, DeliveryStatus.FAILED, error=error)
        record_event(
            EventAction.CONFIGURATION_ERROR,
            app=PIPELINE_APP,
            context={
                "message": (
                    f"Notification transport {delivery.transport_name or 'drawer'!r} could not "
                    f"deliver to {delivery.user.get_username()}: {error}"
                ),
                "notification_delivery": str(delivery.pk),
                "rule": model_to_dict(delivery.rule) if delivery.rule else delivery.rule_name,
                "transport": (
                    model_to_dict(delivery.transport)
                    if delivery.transport
                    else delivery.transport_name
                ),
                "event_pk": str(delivery.event_uuid) if delivery.event_uuid else None,
                "attempts": delivery.attempts,
            },
        )


# --- Testing a transport ------------------------------------------------------------------------


@dataclass
class SendOutcome:
    success: bool
    messages: list[str] = field(default_factory=list)


def send_test(transport: NotificationTransport, user: User) -> SendOutcome:
    """Send a test notification to ``user`` through ``transport`` now, once, and say what
    happened. Nothing is retried and no delivery is recorded."""
    body = f"Test notification from transport {transport.name}"
    event = Event(
        action=f"{EventAction.CUSTOM_PREFIX}notification_test",
        app=PIPELINE_APP,
        user=get_user(user),
        context={"message": body},
        created=timezone.now(),
    )
    notification = Notification(
        severity=NotificationSeverity.NOTICE, body=body, user=user, event=event
    )
    with notification_pipeline():
        try:
            return SendOutcome(True, transports.send(transport, notification))
        except transports.DeliverySkipped as exc:
            return SendOutcome(True, [str(exc)])
        except transports.TransportError as exc:
            return SendOutcome(False, [str(exc)])
