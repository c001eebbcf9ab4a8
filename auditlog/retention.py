"""The retention in force, read from the system settings with a short per-process cache."""

from __future__ import annotations

import time
from datetime import timedelta
from threading import Lock

from django.conf import settings
from django.db import DatabaseError

_TTL_SECONDS = 30.0
_lock = Lock()
_cached: tuple[float, timedelta] | None = None


def cached_retention() -> timedelta:
    global _cached
    now = time.monotonic()
    if _cached is not None and now - _cached[0] < _TTL_SECONDS:
        return _cached[1]
    from auditlog.models import SystemSettings

    try:
        row = SystemSettings.objects.filter(pk=1).only("event_retention").first()
    except DatabaseError:  # before the first migration
        row = None
    retention = row.retention if row is not None else settings.EVENT_RETENTION
    with _lock:
        _cached = (now, retention)
    return retention


def forget_retention() -> None:
    """Drop the cache; called when the system settings change."""
    global _cached
    with _lock:
        _cached = None
