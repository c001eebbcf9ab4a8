"""The canonical form of a sealed event and the hash that links it to the one before.

Pure functions: no database access, so the same bytes come out on every database and in
every process that checks the chain (the sealer, verification, an outside auditor).
"""

from __future__ import annotations

import hashlib
import json
import re
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


# The text :func:`iso_utc` writes for a year from 1000 on: what PostgreSQL's
# ``to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`` writes too.
_ISO_UTC_TEXT = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def utc_text(value: datetime | str) -> str:
    """:func:`iso_utc` of a time given as a datetime or as ISO 8601 text with its offset (the
    sealer reads times from PostgreSQL as text; text already in the canonical form is kept as
    it is, any other is read and written again)."""
    if isinstance(value, str):
        if _ISO_UTC_TEXT.fullmatch(value):
            return value
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(f"a time without its offset: {value!r}")
        value = parsed
    return iso_utc(value)


# ``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, without
# building the encoder again for every event (what ``json.dumps`` does when given options).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same data, on every database."""
    return _ENCODER.encode(document).encode()


def canonical_event(row: Mapping[str, Any], *, queued_at: datetime | str | None = None) -> bytes:
    """The event's canonical JSON, from its stored values (a ``values()`` row of
    :data:`CANONICAL_FIELDS`; times as datetimes or text, see :func:`utc_text`), and the
    database's clock when the event was queued (``queued_at``, stored on the link) when the
    link has one: links sealed before that clock was recorded hash the event alone, so their
    hashes stay what they were."""
    pk = row["event_uuid"]
    client_ip = row["client_ip"]
    document: dict[str, Any] = {
        "pk": (pk if isinstance(pk, UUID) else UUID(str(pk))).hex,
        "action": row["action"],
        "app": row["app"],
        "user": row["user"],
        "context": row["context"],
        "client_ip": str(client_ip) if client_ip is not None else None,
        "created": utc_text(row["created"]),
        "expires": utc_text(row["expires"]),
        "expiring": bool(row["expiring"]),
        "brand": row["brand"],
    }
    if queued_at is not None:
        document["queued_at"] = utc_text(queued_at)
    return canonical_json(document)


def link_hash(prev: str | None, canonical: bytes) -> str:
    """``sha256(prev + canonical)`` as hex: a link depends on everything before it."""
    return hashlib.sha256((prev or "").encode("utf-8", "surrogatepass") + canonical).hexdigest()
