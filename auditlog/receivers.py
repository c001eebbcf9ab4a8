"""Housekeeping receivers: caches that must follow the rows they cache, and the hand-off of
new events to the notification rules."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save


def _forget_retention(**_: Any) -> None:
    from auditlog.retention import forget_retention

    forget_retention()


def connect() -> None:
    from auditlog import chain, notifications
    from auditlog.models import Event, NotificationRule, SystemSettings

    post_save.connect(_forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention")
    post_delete.connect(
        _forget_retention, sender=SystemSettings, dispatch_uid="auditlog.retention_d"
    )
    # Notification rules: every committed event is offered to the dispatcher.
    post_save.connect(
        notifications.on_event_saved, sender=Event, dispatch_uid="auditlog.notifications"
    )
    # Tamper evidence: committed events are sealed into the chain shortly after.
    post_save.connect(chain.on_event_saved, sender=Event, dispatch_uid="auditlog.chain")
    post_save.connect(
        notifications.forget_rules, sender=NotificationRule, dispatch_uid="auditlog.rules"
    )
    post_delete.connect(
        notifications.forget_rules, sender=NotificationRule, dispatch_uid="auditlog.rules_d"
    )
