"""The Celery application. Tasks are discovered from the installed apps' ``tasks`` modules."""

from __future__ import annotations

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from django_structlog.celery.steps import DjangoStructLogInitStep

from project.env import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_configure.connect
def _settings_first(**kwargs: Any) -> None:
    """Celery reads its configuration from the settings: a bad value stops the worker or
    the scheduler with its one-line message, before Celery's traceback."""
    load_settings_or_exit()


# Worker and scheduler log through the settings' LOGGING (logs/setup.py), the same schema
# as the web process; each task's lines carry its id and name.
app.steps["worker"].add(DjangoStructLogInitStep)


@setup_logging.connect
def _log_like_the_web(**kwargs: Any) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


app.autodiscover_tasks()
