"""The formats in which a stream writes an event.

A stream hands each format a :class:`StreamRecord` (the event as the API returns it, plus its
place in the hash chain) and gets back one line of text (no trailing newline), which the
transport frames (a JSON array of a batch, a syslog message, a line of a file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from auditlog.representation import EventJSON


@dataclass(frozen=True)
class StreamRecord:
    """One event on its way out: ``event`` is the API's JSON of it; ``sequence`` and
    ``chain_hash`` are its link in the chain, ``prev_hash`` the link before; and
    ``previous_sequence`` the sequence of the record this destination was sent before this
    one (None for the first), so a receiver of a filtered stream can still tell a gap."""

    event: EventJSON
    sequence: int
    chain_hash: str
    prev_hash: str
    previous_sequence: int | None = None

    def chain(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "hash": self.chain_hash,
            "prev_hash": self.prev_hash,
            "previous_sequence": self.previous_sequence,
        }


class Format(Protocol):
    name: str
    label: str
    content_type: str

    def encode(self, record: StreamRecord) -> str: ...


class ApiFormat:
    """The event exactly as ``/api/v3/events/events/`` returns it, with ``chain`` added."""

    name = "api"
    label = "Event JSON (as the API)"
    content_type = "application/json"

    def encode(self, record: StreamRecord) -> str:
        document = {**record.event, "chain": record.chain()}
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


FORMATS: dict[str, Format] = {ApiFormat.name: ApiFormat()}


def get_format(name: str) -> Format:
    """The format called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f'Unknown format "{name}": use one of {known}.') from None
