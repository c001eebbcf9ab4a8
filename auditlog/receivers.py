"""Housekeeping receivers: caches that must follow the rows they cache."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save


def _forget_retention(**_: Any) -> None:
    from auditlog.retention import forget_retention

    forget_retention()


def connect() -> None:
    from auditlog.models import SystemSettings

    post_save.connect(_forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention")
    post_delete.connect(
        _forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention_d"
    )
