"""Writes with consequences: recording events, retention, housekeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from auditlog.capture import current_actor, current_request
from auditlog.models import Event, EventAction, Notification
from auditlog.sanitize import sanitize

logger = logging.getLogger(__name__)

RETENTION_BATCH_SIZE = 10_000


def as_action(action: str) -> str:
    """A known action as is; anything else as ``custom_<name>``."""
    if action in EventAction.values:
        return str(action)
    return f"{EventAction.CUSTOM_PREFIX}{action}"


def record_event(
    action: str,
    *,
    app: str,
    context: Mapping[str, Any] | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> Event:
    """Write one event in the current transaction and return it.

    Inside a request (given, or the current one) the event carries the request's path, user,
    client address, brand and geo. ``user`` (else the :func:`~auditlog.capture.acting_user`)
    names who acted; outside a request with nobody named, the event has no user.
    """
    event = Event(action=as_action(action), app=app, context=sanitize(dict(context or {})))
    request = request if request is not None else current_request()
    actor = user if user is not None else current_actor()
    if request is not None:
        return event.from_http(request, user=actor)
    if actor is not None:
        event.set_user(actor)
    event.save()
    return event


def delete_expired_events(
    *,
    now: datetime | None = None,
    batch_size: int = RETENTION_BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Delete every expired event in set-based batches; return how many were deleted.

    Each batch is its own short transaction, so concurrent writers never wait long.
    Notifications keep existing with their event link cleared.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            pks = list(
                Event.objects.expired(now).order_by().values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                break
            Notification.objects.filter(event_id__in=pks).update(event=None)
            deleted = Event.objects.filter(pk__in=pks)._raw_delete(connection.alias)
        total += deleted
        if progress is not None:
            progress(deleted)
        if len(pks) < batch_size:
            break
    if total:
        logger.info("Expired %d Events", total)
    return total


def clean_up_notifications() -> int:
    """Delete notifications that were read or whose event is gone."""
    deleted, _ = Notification.objects.filter(seen=True).delete()
    orphans, _ = Notification.objects.filter(event__isnull=True).delete()
    return deleted + orphans
