"""Typed readers for environment variables.

Every reader names the variable in its error, so a bad value fails at start-up with a
message an operator can act on.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from project.durations import DurationFormatError, parse_duration

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name}: {raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: {raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}: {value} is below the minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_duration(name: str, default: str) -> timedelta:
    raw = os.environ.get(name, default)
    try:
        return parse_duration(raw)
    except DurationFormatError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def load_settings_or_exit(status: int = 1) -> None:
    """Load the settings now. A bad value ends the program with its one readable line on
    stderr and ``status``, instead of the traceback Django or Celery would print around it.

    Every entry point calls it first: manage.py, the WSGI and ASGI applications and the Celery
    app."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching one setting imports them all
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        raise SystemExit(status) from None
