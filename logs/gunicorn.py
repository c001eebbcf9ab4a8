"""gunicorn's own lines (listening, workers booting and stopping) in the process logs' schema:
``gunicorn --logger-class logs.gunicorn.Logger`` (the Procfile's web process)."""

from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from gunicorn import glogging


class Logger(glogging.Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        from django.conf import settings

        try:
            config = settings.LOGGING
        except ImproperlyConfigured:
            return  # the application says what is wrong itself, in one line, when it loads
        logging.config.dictConfig(config)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
            if log.name not in settings.LOG_LEVELS:
                log.setLevel(logging.NOTSET)  # LOG_LEVEL decides, as for every logger
