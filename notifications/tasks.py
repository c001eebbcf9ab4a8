"""Thin Celery tasks of the notification pipeline: each calls one service and is safe to run
twice. Their names are those they had in ``auditlog.tasks``, so that messages queued before
an upgrade still run after it."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from notifications import deliveries, dispatch, services
from notifications.transports import TransportError


@shared_task(name="auditlog.tasks.clean_up_notifications")
def clean_up_notifications() -> int:
    return services.clean_up_notifications()


@shared_task(name="auditlog.tasks.dispatch_notifications")
def dispatch_notifications(event_id: str) -> int:
    return len(dispatch.dispatch_event(event_id))


@shared_task(name="auditlog.tasks.dispatch_notifications_batch")
def dispatch_notifications_batch(event_ids: list[str]) -> int:
    """:func:`dispatch_notifications` for many events (a sealed batch)."""
    return sum(len(dispatch.dispatch_event(event_id)) for event_id in event_ids)


@shared_task(
    bind=True,
    name="auditlog.tasks.deliver_notification",
    autoretry_for=(TransportError,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=settings.NOTIFICATION_MAX_RETRIES,
)
def deliver_notification(self: Any, delivery_id: str) -> str:
    """One attempt; transient failures are retried with exponential backoff, the last one is
    recorded (the service decides, knowing whether this is the final attempt)."""
    final = self.request.retries >= (self.max_retries or 0)
    return deliveries.deliver(delivery_id, final_attempt=final)
