"""Ingesting events from other systems in batches, at close to the database's own speed.

The rules are those of the single-event API (a known or custom action, an app, JSON objects,
a valid IP; the server sets pk, created and expires; everything is sanitised), checked for the
whole batch before anything is written: a batch is stored completely or not at all. The
checks and the write are the recording service's (:func:`auditlog.services.record_events`);
this module adds what only the API's batch endpoint asks: a non-empty array, at most
:data:`MAX_BATCH` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditlog.bulk import EventRow
from auditlog.services import EventsRejected, record_events

MAX_BATCH = 5_000


@dataclass
class BatchError(Exception):
    """Why a batch was refused: ``{index: {field: [message]}}``, or one message."""

    errors: dict[str, Any]


def ingest_events(items: Any) -> list[EventRow]:
    """Validate the whole batch, then write it in one transaction; return the events.

    Raises :class:`BatchError` (nothing written) when any event is invalid.
    """
    if not isinstance(items, list) or not items:
        raise BatchError({"non_field_errors": ["Expected a non-empty JSON array of events."]})
    if len(items) > MAX_BATCH:
        raise BatchError({"non_field_errors": [f"At most {MAX_BATCH} events per batch."]})
    try:
        return record_events(items, batch_size=MAX_BATCH)
    except EventsRejected as exc:
        raise BatchError(exc.errors) from None
