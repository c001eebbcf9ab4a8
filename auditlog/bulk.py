"""Writing many events at once: ``COPY FROM STDIN`` on PostgreSQL, ``bulk_create`` elsewhere.

Callers hand in :class:`EventRow` tuples (or unsaved :class:`Event` instances) whose ``created``
they want kept (demo data, batch ingestion); the JSON fields must already be sanitised.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, NamedTuple

import orjson
from django.db import connection, transaction

from auditlog.models import Event

BATCH_SIZE = 5_000
COLUMNS = (  # every column of the events table, in the order COPY writes them
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


class EventRow(NamedTuple):
    """One event to write, without the cost of a model instance."""

    event_uuid: uuid.UUID
    user: dict[str, Any]
    action: str
    app: str
    context: dict[str, Any]
    client_ip: str | None
    created: datetime
    brand: dict[str, Any]
    expires: datetime
    expiring: bool = True


def _batches(events: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def write_events(
    events: Iterable[EventRow | Event],
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


def _bulk_create_batch(batch: list[EventRow | Event]) -> None:
    instances = []
    for item in batch:
        event = Event(**item._asdict()) if isinstance(item, EventRow) else item
        event._keep_created = True  # type: ignore[attr-defined]
        instances.append(event)
    Event.objects.bulk_create(instances)


def dumps(value: Any) -> str:
    """JSON text for a jsonb column; orjson, or the standard library for what orjson refuses
    (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _copy_batch(batch: list[EventRow | Event]) -> None:
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in COLUMNS)
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
