"""Delivering: one attempt at one delivery, and what a final failure leaves behind.

:func:`deliver` makes one attempt; the task retries transient failures with exponential
backoff, and a final failure is kept on the delivery and recorded as a
``configuration_error`` event (which, being the pipeline's own, dispatches nothing).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.sanitize import model_to_dict, sanitize
from auditlog.services import record_event
from notifications import transports
from notifications.dispatch import PIPELINE_APP, notification_pipeline
from notifications.models import DeliveryStatus, Notification, NotificationDelivery, TransportMode

logger = logging.getLogger(__name__)

# A delivery left "sending" this long was abandoned by its worker and may be claimed again.
STALE_SENDING = timedelta(minutes=10)


def deliver(delivery_id: str, *, final_attempt: bool = True) -> str:
    """Make one attempt at a delivery and return its status.

    Safe to run twice: only a waiting delivery is claimed. When the attempt fails and may be
    retried (and this is not the ``final_attempt``), the error is kept and
    :class:`~notifications.transports.TransportError` is raised for the task to retry; otherwise the
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
            action=EventAction.CONFIGURATION_ERROR,
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
