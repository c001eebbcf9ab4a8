"""The logging configuration of every process, built from the environment by the settings.

One schema for web, worker and scheduler: structlog renders both its own loggers and the
standard library's (``logging.getLogger(__name__)``) through the same processors, as readable
lines on a terminal or JSON lines (``LOG_FORMAT=json``, the default when stderr is not a
terminal). ``trace`` is a real level (5) below DEBUG.

Imported by the settings before the apps load, so nothing here imports a model; the redaction
step (:mod:`logs.processors`) imports the policy once the apps are ready.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from django.core.exceptions import ImproperlyConfigured

from logs.processors import redact
from project.loglevels import TRACE

ROLES = ("web", "worker", "scheduler")
FORMATS = ("json", "text")


def process_role(argv: Sequence[str]) -> str:
    """Which process this is: ``web``, ``worker`` or ``scheduler`` (``LOG_PROCESS`` overrides)."""
    if configured := os.environ.get("LOG_PROCESS", "").strip().lower():
        if configured not in ROLES:
            raise ImproperlyConfigured(
                f"LOG_PROCESS: {configured!r} is not a process (use web, worker or scheduler)."
            )
        return configured
    words = [Path(arg).name for arg in argv]
    # `celery ...`, or `python -m celery ...` (argv[0] is then celery/__main__.py)
    if argv and ("celery" in Path(argv[0]).parts or words[0].startswith("celery")):
        if "beat" in words:
            return "scheduler"
        if "worker" in words:
            return "worker"
    return "web"


def is_one_off_command(argv: Sequence[str]) -> bool:
    """Whether this is a ``manage.py`` command that runs and ends (not a server, a shell or
    Celery), whose terminal is for its own output."""
    return (
        len(argv) > 1
        and Path(argv[0]).name == "manage.py"
        and argv[1] not in ("runserver", "shell", "celery")
    )


def default_format() -> str:
    return "text" if sys.stderr.isatty() else "json"


def parse_format(raw: str) -> str:
    value = raw.strip().lower() or default_format()
    if value not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT: {raw!r} is not a log format (use json or text).")
    return value


def _add_role(role: str) -> structlog.typing.Processor:
    def add_role(
        _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("process", role)
        return event_dict

    return add_role


def shared_processors(role: str) -> list[Any]:
    """What every line goes through, structlog's own and the standard library's alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_role(role),
        structlog.processors.format_exc_info,
        redact,
    ]


def build_logging(
    *,
    level: int,
    console_level: int | None = None,
    logger_levels: dict[str, int],
    log_format: str,
    role: str,
    file_dir: Path | None,
    file_max_bytes: int,
    file_backups: int,
) -> dict[str, Any]:
    """The ``LOGGING`` dictionary, and structlog configured to hand its lines to it."""
    chain = shared_processors(role)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *chain[:-2],
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    json_renderer = structlog.processors.JSONRenderer(sort_keys=False)
    formatters = {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *chain[-2:],
                json_renderer,
            ],
            "foreign_pre_chain": chain[:-2],
        },
        "text": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *chain[-2:],
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
            ],
            "foreign_pre_chain": chain[:-2],
        },
    }
    handlers: dict[str, Any] = {
        "console": {"class": "logging.StreamHandler", "formatter": log_format},
    }
    if console_level is not None:
        handlers["console"]["level"] = console_level
    if file_dir is not None:
        file_dir.mkdir(parents=True, exist_ok=True)
        handlers["file"] = {
            # Several gunicorn workers write the web file: rotation takes a lock between them.
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "formatter": "json",
            "filename": str(file_dir / f"{role}.log"),
            "maxBytes": file_max_bytes,
            "backupCount": file_backups,
            "encoding": "utf-8",
        }
    loggers: dict[str, Any] = {
        # Django logs every query at DEBUG (with DEBUG=true): only trace asks for that much.
        "django.db.backends": {
            "level": logging.DEBUG if level <= TRACE else max(level, logging.INFO)
        },
    }
    for name, logger_level in logger_levels.items():
        loggers[name] = {"level": logger_level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": loggers,
    }
