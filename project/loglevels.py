"""The log levels the settings accept, ``trace`` among them: a real level (5) below DEBUG,
registered with :mod:`logging`, for what a person debugging needs and nobody else."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
LEVEL_CHOICES = "trace, debug, info, warning or error"


def parse_level(variable: str, raw: str) -> int:
    """The level named by ``raw`` (any case); a bad name names ``variable`` in its error."""
    try:
        return LEVELS[raw.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(
            f"{variable}: {raw!r} is not a log level (use {LEVEL_CHOICES})."
        ) from None


def parse_logger_levels(variable: str, raw: str) -> dict[str, int]:
    """``auditlog.capture=trace,notifications=debug`` as ``{logger: level}``."""
    levels: dict[str, int] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, level = item.partition("=")
        if not sep or not name.strip():
            raise ImproperlyConfigured(
                f"{variable}: {item!r} is not logger=level (for example auditlog.capture=trace)."
            )
        levels[name.strip()] = parse_level(f"{variable} ({name.strip()})", level)
    return levels
