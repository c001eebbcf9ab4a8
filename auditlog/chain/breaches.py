"""What a verification finds: the kinds of breach, the first broken link, and the result as
the API and ``verify_events`` give it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict


class Breach(StrEnum):
    CONTENT_CHANGED = "content_changed"
    LINK_BROKEN = "link_broken"
    EVENTS_MISSING = "events_missing"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    FORGED_CHECKPOINT = "forged_checkpoint"
    NOT_CHAINED = "not_chained"
    BACKDATED = "backdated"


BREACH_LABELS = {
    Breach.CONTENT_CHANGED: "content changed",
    Breach.LINK_BROKEN: "link broken",
    Breach.EVENTS_MISSING: "events missing",
    Breach.CHECKPOINT_MISMATCH: "checkpoint mismatch",
    Breach.FORGED_CHECKPOINT: "forged checkpoint",
    Breach.NOT_CHAINED: "events not chained",
    Breach.BACKDATED: "backdated event",
}


@dataclass(frozen=True)
class BrokenLink:
    """Where the chain is broken: a sequence, and the event there when there is one; an
    event that is not chained at all has no sequence."""

    sequence: int | None
    event_pk: str | None
    reason: Breach
    detail: str

    @property
    def message(self) -> str:
        """One line: where, what, and why."""
        if self.sequence is None:
            where = f"event {self.event_pk}"
        else:
            where = f"sequence {self.sequence}"
            if self.event_pk:
                where += f" (event {self.event_pk})"
        return f"Event chain broken at {where}: {BREACH_LABELS[self.reason]}: {self.detail}"


class BrokenLinkJSON(TypedDict):
    sequence: int | None
    event_pk: str | None
    reason: str
    message: str


class VerificationJSON(TypedDict):
    ok: bool
    verified: int
    unsealed: int
    unchained: int
    head: int | None
    from_sequence: int
    to_sequence: int | None
    checkpoints: int
    pruned: int
    first_broken: BrokenLinkJSON | None


@dataclass
class Verification:
    from_sequence: int
    to_sequence: int | None
    verified: int = 0
    checkpoints: int = 0
    pruned: int = 0
    backdated: int = 0
    unsealed: int = 0
    unchained: int = 0
    head: int | None = None
    last_verified: int | None = None
    first_broken: BrokenLink | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def summary(self) -> str:
        span = (
            f"sequences {self.from_sequence} to {self.last_verified}"
            if self.last_verified is not None
            else "no sealed events in range"
        )
        return (
            f"Event chain intact: {self.verified} events verified ({span}), "
            f"{self.checkpoints} checkpoints checked, "
            f"{self.pruned} events removed on record (retention, erasure), "
            f"{self.unsealed} not sealed yet."
        )

    def as_json(self) -> VerificationJSON:
        broken = self.first_broken
        return {
            "ok": self.ok,
            "verified": self.verified,
            "unsealed": self.unsealed,
            "unchained": self.unchained,
            "head": self.head,
            "from_sequence": self.from_sequence,
            "to_sequence": self.to_sequence,
            "checkpoints": self.checkpoints,
            "pruned": self.pruned,
            "first_broken": (
                {
                    "sequence": broken.sequence,
                    "event_pk": broken.event_pk,
                    "reason": str(broken.reason),
                    "message": broken.message,
                }
                if broken
                else None
            ),
        }
