"""Positions in commit order: a gap-free cursor over events.

An event's position is its link's ``sequence`` in the hash chain: the sealer gives links in
the order it takes committed events, so a reader that asks for "events after position N"
never skips an event whose transaction committed late (polling by ``created`` does). Events
become visible here once sealed (within a second of their commit; see
:mod:`auditlog.chain.sealing`).

Every reader in order (the list's cursor, the live stream, SIEM streams) comes through
:func:`events_after`, so a filter means the same thing to all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, QuerySet

from auditlog.models import Event, EventChainLink

# How many links one call looks at, at most, before answering: a narrow filter over a long
# stretch of non-matching events answers with fewer (or no) events and a later position
# instead of scanning the whole table in one request.
SCAN_LIMIT = 20_000


class PositionError(ValueError):
    """A position that is not one: the message says why, for a 400."""


def parse_position(raw: str | None, *, name: str = "position") -> int:
    """A position from text: a non-negative whole number."""
    text = (raw or "").strip()
    if not text.isascii() or not text.isdigit():
        raise PositionError(
            f"{name} must be a non-negative whole number (a chain sequence), not {raw!r}."
        )
    return int(text)


@dataclass(frozen=True)
class Positioned:
    """An event at its place in the chain."""

    sequence: int
    chain_hash: str
    prev_hash: str
    event: Event


@dataclass(frozen=True)
class Page:
    """Events after a position, in order, and where to ask from next (``next_position``
    moves past every link looked at, matching or not)."""

    items: list[Positioned]
    next_position: int


def head_position() -> int:
    """The last sealed position (0 when nothing is sealed yet)."""
    return EventChainLink.objects.aggregate(head=Max("sequence"))["head"] or 0


def events_after(
    events: QuerySet[Event], position: int, limit: int, *, scan_limit: int = SCAN_LIMIT
) -> Page:
    """Up to ``limit`` events of ``events`` (a filtered queryset, not sliced) sealed after
    ``position``, in chain order. Events removed since they were sealed are skipped."""
    items: list[Positioned] = []
    scanned = 0
    cursor = position
    chunk = max(limit, 100)
    events = events.order_by()
    while len(items) < limit and scanned < scan_limit:
        links = list(
            EventChainLink.objects.filter(sequence__gt=cursor)
            .order_by("sequence")
            .values_list("sequence", "event_uuid", "chain_hash", "prev_hash")[:chunk]
        )
        if not links:
            break
        found = {e.event_uuid: e for e in events.filter(event_uuid__in=[link[1] for link in links])}
        for sequence, uuid, chain_hash, prev_hash in links:
            cursor = sequence
            scanned += 1
            event = found.get(uuid)
            if event is not None:
                items.append(Positioned(sequence, chain_hash, prev_hash, event))
                if len(items) == limit:
                    break
        if len(links) < chunk:
            break
    return Page(items=items, next_position=cursor)
