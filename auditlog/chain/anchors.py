"""Where a verification walk starts and what it checks against: the link before its range,
and the signed checkpoints (stored and exported) in sequence order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditlog.chain.canonical import GENESIS
from auditlog.chain.links import highest, last_link, last_pruned
from auditlog.chain.signing import checkpoint_record
from auditlog.models import ChainCheckpoint, ChainRecordKind


class Peek:
    """An iterator whose next item can be looked at first."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = iter(items)
        self._next: Any = None
        self._has = False

    def peek(self) -> Any:
        if not self._has:
            self._next = next(self._items, None)
            self._has = True
        return self._next

    def pop(self) -> Any:
        item = self.peek()
        self._has = False
        return item


@dataclass(frozen=True)
class Anchor:
    """A signed statement that the link at ``sequence`` has ``chain_hash``."""

    sequence: int
    chain_hash: str
    record: Mapping[str, Any]
    origin: str


def anchor_before(from_sequence: int) -> tuple[int | None, str | None]:
    """Where a walk from ``from_sequence`` starts: after the closest link before it (an
    event, or the end of a range retention removed), or at the genesis."""
    if from_sequence <= 1:
        return 1, GENESIS
    link = highest(last_link(before=from_sequence), last_pruned(before=from_sequence))
    return (link.sequence + 1, link.chain_hash) if link else (None, None)


def anchors(
    from_sequence: int, to_sequence: int | None, extra: Sequence[Mapping[str, Any]]
) -> Iterator[Anchor]:
    """Stored checkpoints and the given records, in sequence order."""
    stored = ChainCheckpoint.objects.filter(
        kind=ChainRecordKind.CHECKPOINT, sequence__gte=from_sequence
    )
    if to_sequence is not None:
        stored = stored.filter(sequence__lte=to_sequence)
    stored_anchors = (
        Anchor(c.sequence, c.chain_hash, checkpoint_record(c), "checkpoint")
        for c in stored.order_by("sequence", "pk").iterator()
    )
    given = sorted(
        (
            Anchor(int(r["sequence"]), str(r["chain_hash"]), r, "exported checkpoint")
            for r in extra
            if int(r["sequence"]) >= from_sequence
            and (to_sequence is None or int(r["sequence"]) <= to_sequence)
        ),
        key=lambda anchor: anchor.sequence,
    )
    return heapq.merge(stored_anchors, given, key=lambda anchor: anchor.sequence)
