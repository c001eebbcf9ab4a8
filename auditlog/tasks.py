"""Thin Celery tasks: each calls one service and is safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from auditlog import integrity, notifications, retention, services
from auditlog.chain.sealing import seal_pending
from auditlog.transports import TransportError


@shared_task(name="auditlog.tasks.delete_expired_events")
def delete_expired_events() -> int:
    return retention.delete_expired_events()


@shared_task(name="auditlog.tasks.gdpr_cleanup")
def gdpr_cleanup(user_pk: Any, user_uuid: str) -> int:
    """Delete the events by and about a deleted user (see ``erase_user_events``)."""
    return retention.erase_user_events(user_pk, user_uuid)


@shared_task(name="auditlog.tasks.seal_events")
def seal_events() -> int:
    """Chain the events committed since the last run (queued after commit, and every minute)."""
    return seal_pending()


@shared_task(name="auditlog.tasks.verify_event_chain")
def verify_event_chain() -> bool:
    """Verify the whole chain; a broken link becomes an event that notifies administrators."""
    return integrity.verify_and_report().ok


@shared_task(name="auditlog.tasks.clean_up_notifications")
def clean_up_notifications() -> int:
    return services.clean_up_notifications()


@shared_task(name="auditlog.tasks.dispatch_notifications")
def dispatch_notifications(event_id: str) -> int:
    return len(notifications.dispatch_event(event_id))


@shared_task(name="auditlog.tasks.dispatch_notifications_batch")
def dispatch_notifications_batch(event_ids: list[str]) -> int:
    """:func:`dispatch_notifications` for many events (a batch ingested at once)."""
    return sum(len(notifications.dispatch_event(event_id)) for event_id in event_ids)


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
    return notifications.deliver(delivery_id, final_attempt=final)
