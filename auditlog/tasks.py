"""Thin Celery tasks: each calls one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from auditlog import services


@shared_task(name="auditlog.tasks.delete_expired_events")
def delete_expired_events() -> int:
    return services.delete_expired_events()


@shared_task(name="auditlog.tasks.clean_up_notifications")
def clean_up_notifications() -> int:
    return services.clean_up_notifications()
