"""The canonical form of a sealed event and the hash that links it to the one before.

Pure functions: no database access, so the same bytes come out on every database and in
every process that checks the chain (the sealer, verification, an outside auditor).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

GENESIS = "0" * 64
"""The ``prev_hash`` of the first link."""
CANONICAL_FIELDS = (
    "event_uuid",
    "action",
    "app",
    "user",
    "context",
    "client_ip",
    "created",
    "expires",
    "expiring",
    "brand",
)


def iso_utc(value: datetime) -> str:
    """``2024-05-01T12:00:00.000000Z``: UTC, always with microseconds.

    The text is ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")``'s, written by ``isoformat`` (faster; the
    sealer writes three per event); before the year 1000 ``strftime`` does not pad the year on
    every platform, so such a time keeps its own text (hashes are of these bytes)."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same data, on every database."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_event(row: Mapping[str, Any], *, queued_at: datetime | None = None) -> bytes:
    """The event's canonical JSON, from its stored values (a ``values()`` row of
    :data:`CANONICAL_FIELDS`), and the database's clock when the event was queued
    (``queued_at``, stored on the link) when the link has one: links sealed before that
    clock was recorded hash the event alone, so their hashes stay what they were."""
    pk = row["event_uuid"]
    client_ip = row["client_ip"]
    document: dict[str, Any] = {
        "pk": (pk if isinstance(pk, UUID) else UUID(str(pk))).hex,
        "action": row["action"],
        "app": row["app"],
        "user": row["user"],
        "context": row["context"],
        "client_ip": str(client_ip) if client_ip is not None else None,
        "created": iso_utc(row["created"]),
        "expires": iso_utc(row["expires"]),
        "expiring": bool(row["expiring"]),
        "brand": row["brand"],
    }
    if queued_at is not None:
        document["queued_at"] = iso_utc(queued_at)
    return canonical_json(document)


def link_hash(prev: str | None, canonical: bytes) -> str:
    """``sha256(prev + canonical)`` as hex: a link depends on everything before it."""
    return hashlib.sha256((prev or "").encode("utf-8", "surrogatepass") + canonical).hexdigest()
