"""authentik's duration format: ``key=value`` pairs separated by ``;`` (``days=365;hours=1``)."""

from __future__ import annotations

from datetime import timedelta

_UNITS = ("microseconds", "milliseconds", "seconds", "minutes", "hours", "days", "weeks")


class DurationFormatError(ValueError):
    pass


def parse_duration(value: str) -> timedelta:
    """Parse ``days=365;hours=1``; keys are case-insensitive, values may be floats.

    Unknown keys are ignored, as authentik does, but at least one valid pair is required.
    """
    kwargs: dict[str, float] = {}
    for pair in value.split(";"):
        key, sep, amount = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in _UNITS:
            continue
        try:
            kwargs[key] = kwargs.get(key, 0.0) + float(amount)
        except ValueError:
            raise DurationFormatError(_message(value)) from None
    if not kwargs:
        raise DurationFormatError(_message(value))
    try:
        duration = timedelta(**kwargs)
    except OverflowError:
        raise DurationFormatError(
            f"{value} is longer than the largest supported duration."
        ) from None
    if duration <= timedelta(0):
        raise DurationFormatError(f"{value} must be a positive duration.")
    return duration


def format_duration(duration: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds (``days=1;hours=2``)."""
    days = duration.days
    seconds = duration.seconds
    parts = []
    if days:
        parts.append(f"days={days}")
    if seconds // 3600:
        parts.append(f"hours={seconds // 3600}")
    if seconds % 3600 // 60:
        parts.append(f"minutes={seconds % 3600 // 60}")
    if seconds % 60:
        parts.append(f"seconds={seconds % 60}")
    return ";".join(parts) or "seconds=0"


def _message(value: str) -> str:
    return f"{value} is not in the correct format of 'hours=3;minutes=1'."
