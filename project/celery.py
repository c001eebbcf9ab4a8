"""The Celery application. Tasks are discovered from the installed apps' ``tasks`` modules."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from project.env import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_configure.connect
def _settings_first(**kwargs: Any) -> None:
    """Celery reads its configuration from the settings: a bad value stops the worker or
    the scheduler with its one-line message, before Celery's traceback."""
    load_settings_or_exit()


app.autodiscover_tasks()
