"""Housekeeping receivers: caches that must follow the rows they cache, and GDPR erasure of
deleted users' events. (The recording service asks the chain for a seal after each write;
notification rules subscribe to :data:`auditlog.feed.events_sealed` from their own app.)"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from auditlog import tasks
from auditlog.models import SystemSettings, forget_retention

logger = logging.getLogger(__name__)


def _forget_retention(**_: Any) -> None:
    forget_retention()


def _erase_user_events(instance: Any, **_: Any) -> None:
    """After a user's deletion commits, delete the events by and about them, when the system
    settings ask for GDPR compliance (the default). Queued as a task; if the queue cannot be
    reached, done at once, so that a broker outage never leaves a deleted user's events."""
    if not SystemSettings.load().gdpr_compliance:
        return
    user_pk, user_uuid = instance.pk, instance.uuid.hex

    def erase() -> None:
        try:
            tasks.gdpr_cleanup.delay(user_pk, user_uuid)
        except Exception:  # the broker is down: do it here instead
            logger.warning("Task queue unavailable; erasing user %s's events now", user_pk)
            tasks.gdpr_cleanup.apply(args=(user_pk, user_uuid), throw=True)

    transaction.on_commit(erase)


def connect() -> None:
    post_save.connect(_forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention")
    post_delete.connect(
        _forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention_d"
    )
    # GDPR: a deleted user's events go too (authentik's gdpr_cleanup).
    post_delete.connect(
        _erase_user_events, sender=settings.AUTH_USER_MODEL, dispatch_uid="auditlog.gdpr"
    )
