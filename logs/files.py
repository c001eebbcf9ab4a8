"""Reading the log files back: the System > Logs page and ``manage.py logs`` share this.

Each process role writes ``<LOG_DIR>/<role>.log`` (JSON lines), rotated by size into
``<role>.log.1`` ... ``<role>.log.<LOG_FILE_BACKUPS>``. Lines are read newest first, filtered,
merged across the roles by timestamp, and passed through the redaction step again before
anyone sees them (a line written before a policy change is masked by today's policy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings

from logs.processors import redact
from logs.setup import ROLES
from project.durations import DurationFormatError, parse_duration
from project.loglevels import LEVELS

LineDict = dict[str, Any]
LEVEL_NUMBERS = {**LEVELS, "critical": 50, "exception": 40}
_SHORT_DURATION = re.compile(r"(\d+)\s*(s|m|h|d|w)", re.IGNORECASE)
_DURATION = re.compile(r"(?:\d+[smhdw])+", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LIMIT = 5000


class LogQueryError(ValueError):
    """A filter that cannot be applied; the message says which and why."""


@dataclass(frozen=True)
class LogQuery:
    """Which lines: at least ``level``, of one process, of a logger (and its children), of one
    request (or task) id, newer than ``since`` / than the line ``after`` (a timestamp)."""

    level: int | None = None
    process: str | None = None
    logger: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    after: str | None = None

    def matches(self, line: LineDict) -> bool:
        if self.level is not None and level_number(line) < self.level:
            return False
        if self.process and line.get("process") != self.process:
            return False
        if self.logger:
            name = str(line.get("logger", ""))
            if name != self.logger and not name.startswith(self.logger + "."):
                return False
        ids = (line.get("request_id"), line.get("task_id"))
        return not self.request_id or self.request_id in ids


def level_number(line: LineDict) -> int:
    return LEVEL_NUMBERS.get(str(line.get("level", "")).lower(), 0)


def parse_since(raw: str, *, now: datetime | None = None) -> datetime:
    """``90s``, ``15m``, ``1h30m``, ``2d``, ``days=1;hours=2`` (ago), or an ISO 8601 time."""
    now = now or datetime.now(UTC)
    text = raw.strip()
    if _DURATION.fullmatch(text.replace(" ", "")):
        amounts: dict[str, float] = {}
        for amount, unit in _SHORT_DURATION.findall(text):
            key = _UNITS[unit.lower()]
            amounts[key] = amounts.get(key, 0) + int(amount)
        return now - timedelta(**amounts)
    if "=" in text:
        try:
            return now - parse_duration(text)
        except DurationFormatError as exc:
            raise LogQueryError(f"since: {exc}") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LogQueryError(
            f"since: {raw!r} is neither a duration (15m, 1h, 2d) nor a time (2026-01-31T12:00Z)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_level_filter(raw: str) -> int:
    try:
        return LEVEL_NUMBERS[raw.strip().lower()]
    except KeyError:
        raise LogQueryError(
            f"level: {raw!r} is not a level (use trace, debug, info, warning or error)."
        ) from None


def parse_process(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ROLES:
        raise LogQueryError(f"process: {raw!r} is not a process (use web, worker or scheduler).")
    return value


def log_dir() -> Path:
    return Path(settings.LOG_DIR)


def _files(role: str, directory: Path) -> list[Path]:
    """The role's files, newest first."""
    current = directory / f"{role}.log"
    backups = sorted(
        (p for p in directory.glob(f"{role}.log.*") if p.suffix.lstrip(".").isdigit()),
        key=lambda p: int(p.suffix.lstrip(".")),
    )
    return [p for p in [current, *backups] if p.is_file()]


def _newest_first(path: Path, needle: bytes | None = None) -> Iterator[LineDict]:
    """The file's lines, newest first; with ``needle``, only the lines holding it (a request
    id is looked for in the raw text first: most lines are then never parsed)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return
    for text in reversed(raw.splitlines()):
        if needle is not None and needle not in text:
            continue
        try:
            line = json.loads(text)
        except ValueError:
            continue  # a line cut by rotation, or not ours
        if isinstance(line, dict) and isinstance(line.get("timestamp"), str):
            yield line


def _role_lines(role: str, query: LogQuery, limit: int, directory: Path) -> list[LineDict]:
    since = query.since.astimezone(UTC).isoformat().replace("+00:00", "Z") if query.since else None
    found: list[LineDict] = []
    needle = query.request_id.encode() if query.request_id else None
    for path in _files(role, directory):
        for line in _newest_first(path, needle):
            stamp = line["timestamp"]
            if (since and stamp < since) or (query.after and stamp <= query.after):
                return found
            if query.matches(line):
                found.append(line)
                if len(found) >= limit:
                    return found
    return found


def read_lines(
    query: LogQuery, *, limit: int = 500, directory: Path | None = None
) -> list[LineDict]:
    """The newest ``limit`` lines matching ``query``, of every role, oldest first, redacted."""
    directory = directory or log_dir()
    limit = max(1, min(limit, MAX_LIMIT))
    roles = [query.process] if query.process else list(ROLES)
    lines = [line for role in roles for line in _role_lines(role, query, limit, directory)]
    lines.sort(key=lambda line: line["timestamp"])
    return [redact(None, "", line) for line in lines[-limit:]]
