"""What every format shares: the record a stream hands it, the protocol it follows, the
``api`` format, and small helpers for the others."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from auditlog.positions import Positioned
from auditlog.representation import EventJSON, event_json


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

    @classmethod
    def of(cls, item: Positioned, previous_sequence: int | None = None) -> StreamRecord:
        """The record of an event read by :func:`auditlog.positions.events_after`."""
        return cls(
            event=event_json(item.event),
            sequence=item.sequence,
            chain_hash=item.chain_hash,
            prev_hash=item.prev_hash,
            previous_sequence=previous_sequence,
        )

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
        return compact_json(document)


def compact_json(document: Any) -> str:
    """One line of JSON: no spaces, non-ASCII kept as is (a newline inside a string is
    escaped by JSON itself, so the line never breaks)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def parse_time(value: str | None) -> datetime | None:
    """The API's ISO 8601 time (``Z`` or an offset) as an aware datetime; None when absent."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def epoch_millis(value: str | None) -> int | None:
    """The API's ISO 8601 time as milliseconds since the epoch (OCSF's and CEF's ``rt``)."""
    moment = parse_time(value)
    return None if moment is None else int(moment.timestamp() * 1000)


def user_pk(user: dict[str, Any]) -> str | None:
    """The event user's pk as text, or None for no user."""
    pk = user.get("pk")
    return None if pk is None or pk == "" else str(pk)


# How much an action matters to a security analyst, on OCSF's scale (1 Informational, 2 Low,
# 3 Medium, 4 High); CEF's 0-10 severity is derived from it. Unlisted actions (and custom_*)
# are informational.
SEVERITY_LOW, SEVERITY_MEDIUM, SEVERITY_HIGH = 2, 3, 4
SEVERITY_INFORMATIONAL = 1
ACTION_SEVERITY: dict[str, int] = {
    "password_set": SEVERITY_LOW,
    "secret_rotate": SEVERITY_LOW,
    "configuration_warning": SEVERITY_LOW,
    "impersonation_ended": SEVERITY_LOW,
    "user_offboarded": SEVERITY_LOW,
    "access_request_denied": SEVERITY_LOW,
    "login_failed": SEVERITY_MEDIUM,
    "secret_view": SEVERITY_MEDIUM,
    "impersonation_started": SEVERITY_MEDIUM,
    "policy_exception": SEVERITY_MEDIUM,
    "property_mapping_exception": SEVERITY_MEDIUM,
    "system_task_exception": SEVERITY_MEDIUM,
    "configuration_error": SEVERITY_MEDIUM,
    "suspicious_request": SEVERITY_HIGH,
    "system_exception": SEVERITY_HIGH,
}


def action_severity(action: str) -> int:
    """The OCSF ``severity_id`` of an action (1 to 4)."""
    return ACTION_SEVERITY.get(action, SEVERITY_INFORMATIONAL)


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a context may hold anything)."""
    return value if isinstance(value, dict) else {}
