"""Writing many events at once: ``COPY FROM STDIN`` on PostgreSQL, ``bulk_create`` elsewhere.

Callers hand in unsaved :class:`Event` instances whose ``created`` they want kept (demo data,
imports); the contexts must already be sanitised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.db import connection, transaction

from auditlog.models import Event

BATCH_SIZE = 5_000
_COLUMNS = (
    "event_uuid",
    "user",
    "action",
    "app",
    "context",
    "client_ip",
    "created",
    "brand",
    "expires",
    "expiring",
)


def _batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def write_events(
    events: Iterable[Event],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Insert ``events`` in batches (one transaction each); return how many were written."""
    writer = _copy_batch if connection.vendor == "postgresql" else _bulk_create_batch
    written = 0
    for batch in _batches(events, batch_size):
        with transaction.atomic():
            writer(batch)
        written += len(batch)
        if progress is not None:
            progress(len(batch))
    return written


def _bulk_create_batch(batch: list[Event]) -> None:
    for event in batch:
        event._keep_created = True  # type: ignore[attr-defined]
    Event.objects.bulk_create(batch)


def _copy_batch(batch: list[Event]) -> None:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in _COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor underneath Django's wrapper
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for event in batch:
                copy.write_row(
                    (
                        event.event_uuid,
                        dumps(event.user),
                        event.action,
                        event.app,
                        dumps(event.context),
                        event.client_ip,
                        event.created,
                        dumps(event.brand),
                        event.expires,
                        event.expiring,
                    )
                )
