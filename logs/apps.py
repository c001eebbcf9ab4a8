from __future__ import annotations

from typing import Any

import structlog
from django.apps import AppConfig
from django.conf import settings

from project.loglevels import TRACE

logger = structlog.get_logger("logs")


def bind_request(request: Any, **kwargs: Any) -> None:
    """Every line of a request carries the request id its events store
    (``context.http_request.request_id``, made by the audit middleware) and who asked."""
    if request_id := getattr(request, "request_id", None):
        structlog.contextvars.bind_contextvars(request_id=request_id)
    bind_user(request)


def bind_user(request: Any, **kwargs: Any) -> None:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        structlog.contextvars.bind_contextvars(user_id=user.pk, username=user.get_username())


def bind_task(task: Any, **kwargs: Any) -> None:
    structlog.contextvars.bind_contextvars(task_name=task.name)


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Process logs"

    def ready(self) -> None:
        from django_structlog import signals
        from django_structlog.celery import signals as celery_signals

        signals.bind_extra_request_metadata.connect(bind_request)
        signals.bind_extra_request_finished_metadata.connect(bind_user)
        celery_signals.bind_extra_task_metadata.connect(bind_task)
        traced = [name for name, level in settings.LOG_LEVELS.items() if level <= TRACE]
        if settings.LOG_LEVEL_NUMBER <= TRACE or traced:
            logger.warning(
                "trace logging is on: lines carry SQL, request details and more, and are many",
                loggers=traced or ["all"],
            )
