"""Reads of the audit trail, on the record: who searched, opened, exported or verified what, and
from where (PCI DSS 10.2.1.3 asks that every access to audit logs be logged).

Every read enters through :func:`record_read`, which writes it with
:func:`auditlog.services.record_event`: action ``custom_`` (authentik's own custom action, which
its generated clients and Elastic's integration read) and app ``auditlog.reads``;
``context.read`` says what kind of read, ``context.via`` where (``api``, ``page``, ``command``).
Token keys are not here: their views are ``secret_view`` events, as authentik writes them.

Browsing does not flood the log. The same read (kind, what was read, reader, address, surface)
within ``AUDIT_READS_WINDOW`` of its first is one event: the first is written at once with
``count`` 1; the repeats are counted in the Django cache, and once the window is over one summary
event is written with their ``count`` (``summary_of`` names the first). Nothing written is ever
changed (events are sealed into the hash chain), and the sum of ``context.count`` over read
events is the number of reads. A window is closed by adding :data:`CLOSED` to its counter in one
atomic step, so a repeat that arrives as it closes sees it and is written as a first read: no
read is lost to a race. Summaries are written by the next read after their window and by the
``flush_reads`` task every minute (both need the shared cache, ``CACHE_URL``, to see the counts).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, QueryDict

from auditlog.context import current_request, outside_request
from auditlog.models import Event, EventAction
from auditlog.requests import client_ip as request_client_ip
from auditlog.services import record_event

APP = "auditlog.reads"
ACTION = EventAction.CUSTOM_PREFIX.value  # "custom_": in authentik's enum, unlike custom_<name>
# Added to a window's counter to close it: any count at or above it means "closed".
CLOSED = 1 << 40
# Query parameters that page through a result rather than choose it.
PAGING = frozenset({"page", "page_size", "cursor", "after", "format"})
# How many past buckets a flusher looks at when it does not know where it stopped.
BACKLOG = 60
_PREFIX = "auditlog:reads:"
_FLUSHED = f"{_PREFIX}flushed-through"


class Read(StrEnum):
    """What kind of read (``context.read``)."""

    SEARCH = "search"
    EVENT = "event"
    EXPORT_REQUEST = "export_request"
    EXPORT_DOWNLOAD = "export_download"
    CHAIN_VERIFICATION = "chain_verification"


MESSAGES = {
    Read.SEARCH: "Searched the event log",
    Read.EVENT: "Viewed an event",
    Read.EXPORT_REQUEST: "Requested a data export",
    Read.EXPORT_DOWNLOAD: "Downloaded a data export",
    Read.CHAIN_VERIFICATION: "Verified the event chain",
}


class Window(TypedDict):
    """An open window, as kept in the cache until its summary is written."""

    digest: str
    start: int  # microseconds since the epoch, by :func:`clock`
    first: str  # the first read's event pk
    user: dict[str, Any]
    client_ip: str | None
    brand: dict[str, Any]
    context: dict[str, Any]


def clock() -> float:
    """Seconds since the epoch; tests replace it to travel in time."""
    return time.time()


def search_terms(query: QueryDict | Mapping[str, Any]) -> dict[str, Any]:
    """What a list request searched: the query, the filters and the order (paging left out, so
    the pages of one search are one read)."""
    lists = query.lists() if isinstance(query, QueryDict) else query.items()
    values: dict[str, Any] = {}
    for key, value in lists:
        if key in PAGING:
            continue
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else sorted(value)
        values[key] = value
    search = values.pop("search", "")
    ordering = values.pop("ordering", "")
    return {"search": search, "filters": dict(sorted(values.items())), "ordering": ordering}


def record_read(
    *,
    kind: Read,
    via: str,
    what: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Event | None:
    """Record that the current reader read ``what`` (part of the read's identity) and return
    the event, or ``None`` when the read is a repeat within its window (counted for the summary)
    or reads are not recorded (``AUDIT_READS``). ``details`` go into the event but do not make
    two reads different. The reader and address are the request's (given or current)."""
    if not settings.AUDIT_READS:
        return None
    now = _micros(clock())
    request = request if request is not None else current_request()
    flush_due(now=now)
    reader = getattr(request, "user", None) if request is not None else None
    address = request_client_ip(request) if request is not None else None
    identity = [str(kind), via, getattr(reader, "pk", None), address, dict(what)]
    digest = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    if _counted(digest, now):
        return None
    context = {
        "message": MESSAGES[kind],
        "read": str(kind),
        "via": via,
        **what,
        **(details or {}),
        "count": 1,
    }
    event = record_event(action=ACTION, app=APP, context=context, request=request)
    _open(digest, now, event)
    return event


def flush_due(*, now: int | None = None) -> int:
    """Write the summary of every window that is over and had repeats; return how many were
    written. Safe to run in several processes at once: each window is closed exactly once.
    Inside a transaction nothing is done (a rollback would lose the counts): the task or a
    later read will."""
    if transaction.get_connection().in_atomic_block:
        return 0
    now = now if now is not None else _micros(clock())
    span = _window()
    due = now // span - 2  # a window opened in bucket b is over by the start of bucket b + 2
    done = cache.get(_FLUSHED)
    if done is not None and done >= due:
        return 0
    first = due - BACKLOG if done is None else max(done + 1, due - BACKLOG)
    written = 0
    for bucket in range(first, due + 1):
        written += _flush_bucket(bucket)
    cache.set(_FLUSHED, due, None)
    return written


# --- The windows, in the cache ------------------------------------------------------------------


def _micros(seconds: float) -> int:
    return int(seconds * 1_000_000)


def _window() -> int:
    return _micros(settings.AUDIT_READS_WINDOW.total_seconds())


def _ttl() -> int:
    """How long the cache keeps a window (real seconds): well past its summary."""
    return max(3600, int(settings.AUDIT_READS_WINDOW.total_seconds()) * 10)


def _open_key(digest: str) -> str:
    return f"{_PREFIX}open:{digest}"


def _count_key(digest: str, start: int) -> str:
    return f"{_PREFIX}count:{digest}:{start}"


def _counted(digest: str, now: int) -> bool:
    """Count this read as a repeat of an open window, if there is one and it is not closed."""
    start = cache.get(_open_key(digest))
    if start is None or now >= start + _window():
        return False
    try:
        return int(cache.incr(_count_key(digest, start))) < CLOSED
    except ValueError:  # the counter is gone (evicted): this read is written on its own
        return False


def _open(digest: str, now: int, event: Event) -> None:
    """Open a window after its first read, and list it under its bucket for the flusher."""
    ttl = _ttl()
    cache.set(_count_key(digest, now), 0, ttl)
    cache.set(_open_key(digest), now, ttl)
    bucket = now // _window()
    length = f"{_PREFIX}bucket:{bucket}"
    cache.add(length, 0, ttl)
    index = cache.incr(length)
    window = Window(
        digest=digest,
        start=now,
        first=str(event.pk),
        user=dict(event.user or {}),
        client_ip=event.client_ip,
        brand=dict(event.brand or {}),
        context=dict(event.context),
    )
    cache.set(f"{length}:{index}", window, ttl)


def _flush_bucket(bucket: int) -> int:
    length = f"{_PREFIX}bucket:{bucket}"
    written = 0
    for index in range(1, int(cache.get(length) or 0) + 1):
        window: Window | None = cache.get(f"{length}:{index}")
        if window is None:
            continue
        try:
            closed = int(cache.incr(_count_key(window["digest"], window["start"]), CLOSED))
        except ValueError:
            continue
        repeats = closed - CLOSED
        if 0 < repeats < CLOSED:  # else none, or closed already by another flusher
            _write_summary(window, repeats)
            written += 1
    return written


def _write_summary(window: Window, repeats: int) -> None:
    start = window["start"]
    end = start + _window()
    context = {
        **window["context"],
        "message": f"{window['context'].get('message', 'Read')} again, {repeats} more times",
        "count": repeats,
        "summary_of": window["first"],
        "window_start": _iso(start),
        "window_end": _iso(end),
    }
    context.pop("geo", None)  # the address is enriched again
    context.pop("asn", None)
    with outside_request():
        record_event(
            action=ACTION,
            app=APP,
            context=context,
            user=window["user"] or None,
            client_ip=window["client_ip"],
            brand=window["brand"] or None,
        )


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).isoformat()
