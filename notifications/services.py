"""Notification services: testing a transport, and housekeeping of read notifications."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.sanitize import get_user
from directory.models import User
from notifications import transports
from notifications.dispatch import PIPELINE_APP, notification_pipeline
from notifications.models import Notification, NotificationSeverity, NotificationTransport


def clean_up_notifications() -> int:
    """Delete notifications that were read or whose event is gone; return how many."""
    deleted, _ = Notification.objects.filter(seen=True).delete()
    orphans, _ = Notification.objects.filter(event__isnull=True).delete()
    return deleted + orphans


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
