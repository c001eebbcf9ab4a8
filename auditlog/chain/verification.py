"""Verification: walk the links in sequence order joined to their events and report the
first broken link (content changed, link broken, events missing, checkpoint mismatch, forged
checkpoint), events that are neither chained nor queued, and backdated events.

A verification reads one consistent state of the database, whatever is written meanwhile:
on PostgreSQL one ``REPEATABLE READ READ ONLY`` transaction, on SQLite (WAL) one deferred
read transaction, for the links, the head, the checkpoints, the prune records and the
queue alike (see :func:`snapshot`). Without it, links sealed between streaming the links and
reading the head looked like events missing at the end of the chain (issue 16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from auditlog.chain.anchors import Peek, anchor_before, anchors
from auditlog.chain.breaches import Breach, BrokenLink, Verification
from auditlog.chain.canonical import CANONICAL_FIELDS, canonical_event, link_hash
from auditlog.chain.links import (
    backdated_by,
    chain_head,
    queued_by_trigger,
    unlinked_events,
    unsealed_count,
)
from auditlog.chain.signing import checkpoint_record, key_id, signature_valid
from auditlog.models import ChainCheckpoint, ChainRecordKind, Event, EventChainLink

VERIFY_CHUNK_SIZE = 2_000
# A link joined to its event (LEFT JOIN: the event's values are None when it is gone).
_LINK_FIELDS = (
    "sequence",
    "event_uuid",
    "prev_hash",
    "chain_hash",
    "queued_at",
    *(f"event__{name}" for name in CANONICAL_FIELDS),
)


@contextmanager
def snapshot() -> Iterator[None]:
    """Every read inside sees one consistent state of the database.

    PostgreSQL: a ``REPEATABLE READ READ ONLY`` transaction (the streaming server-side
    cursors of ``iterator()`` are plain cursors inside it, reading the same snapshot).
    SQLite: a deferred transaction, whose first read fixes the WAL snapshot for the rest; not
    ``atomic()``, which begins IMMEDIATE here (settings) and would hold the write lock for
    the whole walk. Inside a transaction already (a test's), that transaction decides."""
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "sqlite":
        with _sqlite_read_transaction():
            yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@contextmanager
def _sqlite_read_transaction() -> Iterator[None]:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")  # it wrote nothing


def count_sealed(*, from_sequence: int = 1, to_sequence: int | None = None) -> int:
    """How many links a verification of this range walks."""
    return _links(from_sequence, to_sequence).count()


def verify(
    *,
    from_sequence: int = 1,
    to_sequence: int | None = None,
    extra_checkpoints: Sequence[Mapping[str, Any]] = (),
    progress: Callable[[int], object] | None = None,
) -> Verification:
    """Check every link from ``from_sequence`` (to ``to_sequence``) in sequence order,
    streaming the links joined to their events (constant memory), against the stored
    checkpoints and prune records and ``extra_checkpoints`` (exported records kept
    elsewhere); then count the events that are neither chained nor queued (any is a breach).
    All of it in one consistent snapshot (:func:`snapshot`), so concurrent writers and
    sealers never look like a breach. The result names the first broken link; a chain that
    is otherwise intact but holds backdated events names the first of them (and counts them
    all). A range that starts after 1 is anchored on the link just before it."""
    with snapshot():
        return _verify(from_sequence, to_sequence, extra_checkpoints, progress)


def _verify(
    from_sequence: int,
    to_sequence: int | None,
    extra_checkpoints: Sequence[Mapping[str, Any]],
    progress: Callable[[int], object] | None,
) -> Verification:
    result = Verification(from_sequence=from_sequence, to_sequence=to_sequence)
    walker = _Walker(result, from_sequence, to_sequence, extra_checkpoints, progress)
    try:
        walker.run()
    except _Found as found:
        result.first_broken = found.broken
    head = chain_head()
    result.head = head.sequence if head else None
    result.unsealed = unsealed_count()
    if queued_by_trigger():  # elsewhere every unsealed event is unlinked
        result.unchained = unlinked_events().count()
        if result.unchained and result.first_broken is None:
            result.first_broken = _not_chained(result.unchained)
    backdated = walker.first_backdated
    if result.first_broken is None and backdated is not None:
        more = result.backdated - 1
        if more:
            detail = f"{backdated.detail} {more} more backdated events follow it."
            backdated = BrokenLink(backdated.sequence, backdated.event_pk, backdated.reason, detail)
        result.first_broken = backdated
    return result


def _not_chained(count: int) -> BrokenLink:
    oldest = unlinked_events().order_by("created", "event_uuid").values_list("pk", flat=True)
    more = f" and {count - 1} more events are" if count > 1 else " is"
    return BrokenLink(
        None,
        str(oldest.first()),
        Breach.NOT_CHAINED,
        f"it{more} neither chained nor waiting to be sealed (inserted with the queue trigger "
        "disabled, or taken out of the queue).",
    )


class _Found(Exception):  # control flow: never leaves this module
    def __init__(self, broken: BrokenLink) -> None:
        self.broken = broken


def _links(from_sequence: int, to_sequence: int | None) -> QuerySet[EventChainLink]:
    queryset = EventChainLink.objects.filter(sequence__gte=from_sequence)
    if to_sequence is not None:
        queryset = queryset.filter(sequence__lte=to_sequence)
    return queryset


class _Walker:
    def __init__(
        self,
        result: Verification,
        from_sequence: int,
        to_sequence: int | None,
        extra: Sequence[Mapping[str, Any]],
        progress: Callable[[int], object] | None,
    ) -> None:
        self.result = result
        self.to_sequence = to_sequence
        self.progress = progress
        # The next sequence and the hash it must name as previous; None: not known yet (no
        # link before the range), the first link found becomes the anchor.
        self.expected, self.prev = anchor_before(from_sequence)
        # The first link since the last verified one whose event is gone: (sequence, pk).
        self.gone: tuple[int, str] | None = None
        self.pruned_ends: dict[int, str] = {}
        self.prunes = Peek(
            ChainCheckpoint.objects.filter(
                kind=ChainRecordKind.PRUNE, first_sequence__gte=self.expected or from_sequence
            )
            .order_by("first_sequence", "pk")
            .iterator()
        )
        self.anchors = Peek(anchors(from_sequence, to_sequence, extra))
        # Backdated events do not stop the walk (the chain around them is sound): the first
        # is reported when nothing worse is found.
        self.first_backdated: BrokenLink | None = None

    def run(self) -> None:
        start = self.expected if self.expected is not None else self.result.from_sequence
        rows = (
            _links(start, self.to_sequence)
            .order_by("sequence")
            .values(*_LINK_FIELDS)
            .iterator(chunk_size=VERIFY_CHUNK_SIZE)
        )
        pending = 0
        for row in _readable(rows, self):
            self._check(row)
            pending += 1
            if pending == VERIFY_CHUNK_SIZE and self.progress is not None:
                self.progress(pending)
                pending = 0
        if pending and self.progress is not None:
            self.progress(pending)
        self._check_tail()

    def _check(self, row: Mapping[str, Any]) -> None:
        sequence, pk = int(row["sequence"]), str(row["event_uuid"])
        if self.expected is None:
            self.expected, self.prev = sequence, row["prev_hash"]
        # A NOT NULL column that no converter turns into None; not event__event_uuid, which
        # Django reads from the link's own column.
        if row["event__action"] is None:
            # The event is gone: like a missing link, unless a prune record covers it (the
            # gap is checked at the next event, or at the end).
            self.gone = self.gone or (sequence, pk)
            return
        if sequence > self.expected:
            self._cover_gap(sequence, pk, exact=True)
        self._checkanchors(sequence - 1)
        event = {name: row[f"event__{name}"] for name in CANONICAL_FIELDS}
        if _content_hash(row["prev_hash"], event, row["queued_at"]) != row["chain_hash"]:
            raise _Found(
                BrokenLink(
                    sequence,
                    pk,
                    Breach.CONTENT_CHANGED,
                    "the event no longer matches the hash it was sealed with.",
                )
            )
        if row["prev_hash"] != self.prev:
            raise _Found(
                BrokenLink(
                    sequence,
                    pk,
                    Breach.LINK_BROKEN,
                    f"it names {_short(row['prev_hash'])} as the previous link, but the link "
                    f"before it is {_short(self.prev)} (an event was replaced or rehashed).",
                )
            )
        self._checkanchors(sequence, row["chain_hash"], pk)
        self._check_time(sequence, pk, event, row["queued_at"])
        self.expected, self.prev = sequence + 1, row["chain_hash"]
        self.pruned_ends.clear()
        self.gone = None
        self.result.verified += 1
        self.result.last_verified = sequence

    def _check_time(self, sequence: int, pk: str, event: Mapping[str, Any], queued_at: Any) -> None:
        """An event whose ``created`` lies further before the database's clock when it was
        inserted than ``AUDIT_CHAIN_BACKDATE_BOUND`` allows, unless it says it was imported."""
        behind = backdated_by(event["created"], queued_at, event["context"])
        if behind is None:
            return
        self.result.backdated += 1
        if self.first_backdated is None:
            self.first_backdated = BrokenLink(
                sequence,
                pk,
                Breach.BACKDATED,
                f"its time ({event['created'].isoformat()}) is "
                f"{timedelta(seconds=round(behind))} before the database received it, more "
                "than AUDIT_CHAIN_BACKDATE_BOUND allows for a transaction in flight, and it "
                "is not marked as imported (a forged or backdated insert).",
            )

    def _cover_gap(self, target: int, pk: str | None, *, exact: bool) -> None:
        """The sequences from ``expected`` to before ``target`` have no event: signed prune
        records, each following the previous link, must account for exactly these (or, at
        the end of a bounded range, at least these)."""
        assert self.expected is not None
        cursor, link = self.expected, self.prev
        while cursor < target:
            while (record := self.prunes.peek()) is not None and record.first_sequence < cursor:
                self.prunes.pop()  # accounted for already, or not part of this walk
            if record is None or record.first_sequence != cursor:
                break
            if link is not None and record.first_prev != link:
                break
            self.prunes.pop()
            if not signature_valid(checkpoint_record(record)):
                raise _Found(
                    BrokenLink(
                        cursor,
                        None,
                        Breach.FORGED_CHECKPOINT,
                        f"the prune record for sequences {record.first_sequence} to "
                        f"{record.last_sequence} has an invalid signature{_key_note(record)}.",
                    )
                )
            self.result.pruned += int(record.count or 0)
            cursor, link = int(record.last_sequence) + 1, str(record.last_hash)
            self.pruned_ends[cursor - 1] = link
        if cursor < target or (exact and cursor != target):
            raise _Found(self._missing(target, pk if exact else None))
        self.expected, self.prev = cursor, link

    def _missing(self, target: int, resuming_pk: str | None) -> BrokenLink:
        """The gap from ``expected`` to before ``target`` that nothing accounts for; named by
        its first event when that event's link remains."""
        assert self.expected is not None
        first, last = self.expected, target - 1
        resumes = f"; the chain resumes at sequence {target}" if resuming_pk else ""
        if self.gone is None or self.gone[0] != first:
            return BrokenLink(
                first,
                resuming_pk,
                Breach.EVENTS_MISSING,
                f"sequences {first} to {last} are gone and no signed prune record accounts "
                f"for them{resumes}.",
            )
        span = f"; sequences {first} to {last} are gone" if last > first else ""
        return BrokenLink(
            first,
            self.gone[1],
            Breach.EVENTS_MISSING,
            f"the event was deleted (its link remains){span} and no signed prune record "
            f"accounts for {'them' if last > first else 'it'}{resumes}.",
        )

    def _checkanchors(
        self, up_to: int, chain_hash: str | None = None, pk: str | None = None
    ) -> None:
        """Checkpoints up to ``up_to``: signed with our key, and (for the event at ``up_to``
        with ``chain_hash``, or the end of a removed range) naming the hash the chain has."""
        while (anchor := self.anchors.peek()) is not None and anchor.sequence <= up_to:
            self.anchors.pop()
            at_event = anchor.sequence == up_to and chain_hash is not None
            if not signature_valid(anchor.record):
                raise _Found(
                    BrokenLink(
                        anchor.sequence,
                        pk if at_event else None,
                        Breach.FORGED_CHECKPOINT,
                        f"the {anchor.origin} for this sequence has an invalid signature"
                        f"{_key_note(anchor.record)}.",
                    )
                )
            actual = chain_hash if at_event else self.pruned_ends.get(anchor.sequence)
            if actual is not None and actual != anchor.chain_hash:
                raise _Found(
                    BrokenLink(
                        anchor.sequence,
                        pk if at_event else None,
                        Breach.CHECKPOINT_MISMATCH,
                        f"the {anchor.origin} of {anchor.record.get('created')} signed hash "
                        f"{_short(anchor.chain_hash)} here, the chain now has {_short(actual)} "
                        f"(history was rewritten up to this point).",
                    )
                )
            self.result.checkpoints += 1

    def _check_tail(self) -> None:
        """After the last link: links whose events are gone and ranges retention removed at
        the end must reach the head, and no checkpoint may vouch for a sequence beyond it
        (links removed from the end)."""
        head = chain_head()
        end = head.sequence if head else 0
        if self.to_sequence is not None:
            end = min(end, self.to_sequence)
        if self.expected is None:
            self.expected = self.result.from_sequence
        if self.expected <= end:
            self._cover_gap(end + 1, None, exact=False)
        self._checkanchors(self.expected - 1)
        anchor = self.anchors.peek()
        if anchor is None:
            return
        if not signature_valid(anchor.record):
            raise _Found(
                BrokenLink(
                    anchor.sequence,
                    None,
                    Breach.FORGED_CHECKPOINT,
                    f"the {anchor.origin} for this sequence has an invalid signature"
                    f"{_key_note(anchor.record)}.",
                )
            )
        last = self.expected - 1
        ending = f"the chain ends at sequence {last}" if last else "no sealed event is left"
        raise _Found(
            BrokenLink(
                anchor.sequence,
                None,
                Breach.EVENTS_MISSING,
                f"a signed {anchor.origin} vouches for this sequence but {ending} "
                f"(events were removed from the end).",
            )
        )


def _content_hash(prev: str | None, event: Mapping[str, Any], queued_at: Any) -> str | None:
    try:
        return link_hash(prev, canonical_event(event, queued_at=queued_at))
    except (TypeError, ValueError, AttributeError):  # values no sealer could have written
        return None


def _readable(rows: Iterator[dict[str, Any]], walker: _Walker) -> Iterator[dict[str, Any]]:
    """The rows, or the first broken link when a stored value cannot even be read back."""
    try:
        yield from rows
    except (TypeError, ValueError) as exc:
        after = walker.result.last_verified or walker.result.from_sequence - 1
        sequence, pk = _first_unreadable(after, walker.to_sequence)
        raise _Found(
            BrokenLink(
                sequence,
                pk,
                Breach.CONTENT_CHANGED,
                f"the event holds values that cannot be read back ({exc}).",
            )
        ) from None


def _first_unreadable(after: int, to_sequence: int | None) -> tuple[int, str | None]:
    """Rows are converted a chunk at a time: read them one by one to name the culprit."""
    candidates = _links(after + 1, to_sequence).order_by("sequence")
    for sequence, pk in candidates.values_list("sequence", "event_uuid")[:VERIFY_CHUNK_SIZE]:
        try:
            list(Event.objects.filter(pk=pk).values(*CANONICAL_FIELDS))
        except (TypeError, ValueError):
            return int(sequence), str(pk)
    return after + 1, None


def _short(digest: str | None) -> str:
    return f"{digest[:12]}..." if digest else "nothing"


def _key_note(record: Any) -> str:
    signer = record.get("key_id") if isinstance(record, Mapping) else record.key_id
    if signer and signer != key_id():
        return f" (signed with key {signer}, the configured key is {key_id()})"
    return ""
