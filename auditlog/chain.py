"""Tamper evidence for the event log: a hash chain over the events, signed checkpoints, and
the verification that finds the first broken link.

* **Insert-only.** Nothing here touches the events table: an event's place in the chain is a
  row of its own (:class:`~auditlog.models.EventChainLink`). A database trigger (migration
  ``0004_event_chain``, PostgreSQL and SQLite) queues every inserted event in
  :class:`~auditlog.models.EventChainPending`, however it was written (ORM, ``bulk_create``,
  ``COPY``, raw SQL), inside the inserting statement. On other databases there is no trigger;
  the sealer then finds unsealed events by an anti-join (events without a link) instead.
* **Sealing.** Shortly after events commit, :func:`seal_pending` (a Celery task, queued at
  most once per :data:`SEAL_DEBOUNCE_SECONDS` per process, and every minute by the scheduler)
  takes the queue in ``(created, event_uuid)`` order and gives each event the next link:
  ``sequence``, the previous link's hash (``prev_hash``) and its own hash
  ``chain_hash = sha256(prev_hash + canonical JSON)``; the first link follows
  :data:`GENESIS`. One sealer works at a time (a PostgreSQL advisory lock; SQLite's single
  writer), in short transactions that write whole batches or nothing.
* **Checkpoints.** After sealing, when ``AUDIT_CHAIN_CHECKPOINT_EVENTS`` events or
  ``AUDIT_CHAIN_CHECKPOINT_INTERVAL`` have passed, the head is stored as a checkpoint
  signed with HMAC-SHA256. The key is not in the database: ``AUDIT_CHAIN_KEY``, or else one
  derived from ``SECRET_KEY``. Someone who can rewrite the database can recompute every hash,
  but not a signature; checkpoints exported elsewhere (``manage.py export_checkpoints``) also
  survive the deletion of the stored ones.
* **Retention** removes events only together with their links and a signed ``prune`` record
  of every removed range of sequences (:func:`remove_from_chain`, in the deleting
  transaction), so the gap it leaves is accounted for.
* **Verification** (:func:`verify`) streams the links in sequence order joined to their
  events and reports the first broken link: content changed, link broken, events missing
  (a link whose event is gone, or a gap in the sequences), checkpoint mismatch or forged
  checkpoint; and events that are neither chained nor queued (inserted with the trigger
  disabled, or taken out of the queue).

What it cannot show: a change made before an event was sealed (seconds after its commit), and
the removal of the newest events together with their links after the last checkpoint (the
chain simply ends earlier); frequent checkpoints kept outside the database narrow both.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict, cast
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventAction,
    EventChainLink,
    EventChainPending,
)

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
"""The ``prev_hash`` of the first link."""
SEAL_BATCH_SIZE = 1_000
SEAL_DEBOUNCE_SECONDS = 2.0
VERIFY_CHUNK_SIZE = 2_000
# "auditlog" in ASCII: the PostgreSQL advisory lock that one sealer (or retention) holds.
LOCK_ID = 0x6175_6469_746C_6F67
# The databases on which migration 0004 installs the trigger that queues inserted events.
TRIGGER_VENDORS = frozenset({"postgresql", "sqlite"})
_KEY_CONTEXT = b"auditlog.chain.checkpoint-key"
_KEY_ID_CONTEXT = b"auditlog.chain.key-id"
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
# A link joined to its event (LEFT JOIN: the event's values are None when it is gone).
_LINK_FIELDS = (
    "sequence",
    "event_uuid",
    "prev_hash",
    "chain_hash",
    *(f"event__{name}" for name in CANONICAL_FIELDS),
)


# --- The canonical form -------------------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """``2024-05-01T12:00:00.000000Z``: UTC, always with microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same data, on every database."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_event(row: Mapping[str, Any]) -> bytes:
    """The event's canonical JSON, from its stored values (a ``values()`` row of
    :data:`CANONICAL_FIELDS`)."""
    pk = row["event_uuid"]
    client_ip = row["client_ip"]
    return canonical_json(
        {
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
    )


def link_hash(prev: str | None, canonical: bytes) -> str:
    """``sha256(prev + canonical)`` as hex: a link depends on everything before it."""
    return hashlib.sha256((prev or "").encode("utf-8", "surrogatepass") + canonical).hexdigest()


# --- Locking ------------------------------------------------------------------------------------


def _try_lock() -> bool:
    """Inside a transaction: take the chain lock if it is free (until the transaction ends).

    SQLite needs none: its transactions begin IMMEDIATE (settings), so the writer that holds
    the database is the only one."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_ID])
        return bool(cursor.fetchone()[0])


def lock_chain() -> None:
    """Inside a transaction: wait for the chain lock (retention, so that a sealer never
    chains an event that is being deleted)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])


# --- The queue ----------------------------------------------------------------------------------


def queued_by_trigger() -> bool:
    """Whether this database queues every inserted event by trigger. Elsewhere the queue
    stays empty and the unsealed events are the ones without a link (an anti-join)."""
    return connection.vendor in TRIGGER_VENDORS


def unlinked_events() -> QuerySet[Event]:
    """Events neither chained nor queued. With the trigger, each was inserted while it was
    disabled (or its queue entry was deleted): verification reports them."""
    linked = EventChainLink.objects.filter(event_uuid=OuterRef("pk"))
    queued = EventChainPending.objects.filter(event_uuid=OuterRef("pk"))
    return Event.objects.filter(~Exists(linked), ~Exists(queued))


def unsealed_count() -> int:
    """Events waiting to be sealed."""
    if queued_by_trigger():
        return EventChainPending.objects.count()
    return unlinked_events().count()


# --- Sealing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    sequence: int
    chain_hash: str


def chain_head() -> Link | None:
    """The last link: the newest sealed event, or the end of a range retention removed after
    it; ``None`` before the first seal."""
    return _highest(_last_link(), _last_pruned())


def _last_link(before: int | None = None) -> tuple[Any, Any] | None:
    links = EventChainLink.objects.all()
    if before is not None:
        links = links.filter(sequence__lt=before)
    return links.order_by("-sequence").values_list("sequence", "chain_hash").first()


def _last_pruned(before: int | None = None) -> tuple[Any, Any] | None:
    records = ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
    if before is not None:
        records = records.filter(sequence__lt=before)
    return records.order_by("-sequence").values_list("sequence", "chain_hash").first()


def _highest(*rows: tuple[Any, Any] | None) -> Link | None:
    links = [Link(int(row[0]), str(row[1])) for row in rows if row and row[0] is not None]
    return max(links, key=lambda link: link.sequence, default=None)


def seal_pending(*, batch_size: int = SEAL_BATCH_SIZE, now: datetime | None = None) -> int:
    """Seal every queued event, oldest first, one short transaction per batch; return how
    many were sealed. A batch is written whole or not at all. When another sealer holds the
    lock this returns at once (that one seals the rest). Links are only ever inserted and
    the events table is only read, so running it twice changes nothing. A checkpoint follows
    when one is due."""
    total = 0
    while True:
        batch = _seal_batch(batch_size)
        if batch is None:
            return total
        sealed, taken = batch
        total += sealed
        if taken < batch_size:
            break
    maybe_checkpoint(now=now)
    if total:
        logger.info("Sealed %d events", total)
    return total


def _seal_batch(batch_size: int) -> tuple[int, int] | None:
    """One batch in one transaction: ``(sealed, taken from the queue)``, or ``None`` when
    another sealer holds the lock."""
    with transaction.atomic():
        if not _try_lock():
            return None
        queued = _queued(batch_size)
        if not queued:
            return 0, 0
        keys = keys_in(key for key, _ in queued)
        rows = {
            row["event_uuid"]: row
            for row in Event.objects.filter(pk__in=keys).values(*CANONICAL_FIELDS)
        }
        head = chain_head()
        sequence, prev = (head.sequence, head.chain_hash) if head else (0, GENESIS)
        links: list[EventChainLink] = []
        for key, linked in queued:
            if not _sealable(key, rows, linked):
                continue
            sequence += 1
            digest = link_hash(prev, canonical_event(rows[key]))
            links.append(
                EventChainLink(sequence=sequence, event_uuid=key, prev_hash=prev, chain_hash=digest)
            )
            prev = digest
        EventChainLink.objects.bulk_create(links)
        EventChainPending.objects.filter(pk__in=keys)._raw_delete(connection.alias)
    return len(links), len(queued)


def _queued(batch_size: int) -> list[tuple[UUID, bool]]:
    """The oldest queued events, each with whether it has a link already."""
    if not queued_by_trigger():
        keys = unlinked_events().order_by("created", "event_uuid").values_list("pk", flat=True)
        return [(key, False) for key in keys[:batch_size]]
    linked = EventChainLink.objects.filter(event_uuid=OuterRef("event_uuid"))
    return list(
        EventChainPending.objects.order_by("created", "event_uuid")
        .annotate(linked=Exists(linked))
        .values_list("event_uuid", "linked")[:batch_size]
    )


def _sealable(key: UUID, rows: Mapping[UUID, Any], linked: bool) -> bool:
    """Whether a queued event gets a link; the queue entry goes either way."""
    if key not in rows:
        logger.warning("Event %s was deleted before it was sealed; nothing to chain", key)
        return False
    if linked:
        # Only a row inserted again under the pk of a chained event gets here: its link
        # stays, and verification compares it with the row now stored.
        logger.warning("Event %s is chained already; it was inserted again", key)
        return False
    return True


# --- Queueing a seal after commit ---------------------------------------------------------------

_next_enqueue = 0.0


def on_event_saved(sender: type[Event], created: bool, raw: bool = False, **_: Any) -> None:
    """``post_save`` of Event: queue one seal after commit, at most once per
    :data:`SEAL_DEBOUNCE_SECONDS` in this process (a burst of events is one task). The task
    starts after that delay, so the events of the burst are committed by then; the
    scheduler's run every minute seals anything this misses."""
    if created and not raw:
        request_seal()


def request_seal() -> None:
    """Queue a seal once the current transaction commits, unless this process queued one in
    the last :data:`SEAL_DEBOUNCE_SECONDS` (bulk writers may call it after a batch)."""
    global _next_enqueue
    now = time.monotonic()
    if now < _next_enqueue:
        return
    _next_enqueue = now + SEAL_DEBOUNCE_SECONDS
    # robust: a broker that is down must not turn a committed write into an error.
    transaction.on_commit(enqueue_seal, robust=True)


def enqueue_seal() -> None:
    from auditlog.tasks import seal_events

    seal_events.apply_async(countdown=SEAL_DEBOUNCE_SECONDS)


# --- Keys and signatures ------------------------------------------------------------------------


def chain_key() -> bytes:
    """``AUDIT_CHAIN_KEY``, else a key derived from ``SECRET_KEY``. A separate key kept off
    the database server is stronger: whoever holds the key can sign a rewritten history."""
    if settings.AUDIT_CHAIN_KEY:
        return str(settings.AUDIT_CHAIN_KEY).encode()
    return hmac.new(str(settings.SECRET_KEY).encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def key_id(key: bytes | None = None) -> str:
    """A fingerprint naming the key (it reveals nothing about it)."""
    key = chain_key() if key is None else key
    return hmac.new(key, _KEY_ID_CONTEXT, hashlib.sha256).hexdigest()[:16]


class CheckpointRecord(TypedDict):
    """A checkpoint or prune record as the API and ``export_checkpoints`` give it."""

    kind: str
    sequence: int
    chain_hash: str
    created: str
    first_sequence: int | None
    last_sequence: int | None
    first_prev: str | None
    last_hash: str | None
    count: int | None
    signature: str
    key_id: str


def checkpoint_record(checkpoint: ChainCheckpoint) -> CheckpointRecord:
    return {
        "kind": checkpoint.kind,
        "sequence": checkpoint.sequence,
        "chain_hash": checkpoint.chain_hash,
        "created": iso_utc(checkpoint.created),
        "first_sequence": checkpoint.first_sequence,
        "last_sequence": checkpoint.last_sequence,
        "first_prev": checkpoint.first_prev,
        "last_hash": checkpoint.last_hash,
        "count": checkpoint.count,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
    }


def signed_payload(record: Mapping[str, Any]) -> bytes:
    """What the signature covers: the record's canonical JSON without signature and key_id."""
    return canonical_json({k: v for k, v in record.items() if k not in ("signature", "key_id")})


def signature_valid(record: Mapping[str, Any]) -> bool:
    expected = hmac.new(chain_key(), signed_payload(record), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(record.get("signature", "")))


def _signed(checkpoint: ChainCheckpoint) -> ChainCheckpoint:
    key = chain_key()
    checkpoint.key_id = key_id(key)
    checkpoint.signature = ""
    payload = signed_payload(checkpoint_record(checkpoint))
    checkpoint.signature = hmac.new(key, payload, hashlib.sha256).hexdigest()
    return checkpoint


# --- Checkpoints and prune records --------------------------------------------------------------


def maybe_checkpoint(*, now: datetime | None = None) -> ChainCheckpoint | None:
    """Store a signed checkpoint of the newest sealed event when none exists yet, or when
    ``AUDIT_CHAIN_CHECKPOINT_EVENTS`` events or ``AUDIT_CHAIN_CHECKPOINT_INTERVAL`` have
    passed since the last one; return it, else ``None``."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _try_lock():
            return None
        head = _highest(_last_link())
        if head is None:
            return None
        last = (
            ChainCheckpoint.objects.filter(kind=ChainRecordKind.CHECKPOINT)
            .order_by("-sequence", "-created")
            .only("sequence", "created")
            .first()
        )
        if last is not None and not _checkpoint_due(head.sequence, last, now):
            return None
        checkpoint = ChainCheckpoint(
            kind=ChainRecordKind.CHECKPOINT,
            sequence=head.sequence,
            chain_hash=head.chain_hash,
            created=now,
        )
        _signed(checkpoint).save()
    return checkpoint


def _checkpoint_due(head: int, last: ChainCheckpoint, now: datetime) -> bool:
    if head <= last.sequence:
        return False
    return (
        head - last.sequence >= settings.AUDIT_CHAIN_CHECKPOINT_EVENTS
        or now - last.created >= settings.AUDIT_CHAIN_CHECKPOINT_INTERVAL
    )


def keys_in(pks: Iterable[Any]) -> Any:
    """The right-hand side of an ``__in`` lookup on many event pks. On PostgreSQL one array
    parameter: building and parsing 10,000 placeholders costs more than the rows they name."""
    keys = list(pks)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::uuid[])", [keys])
    return keys


def remove_from_chain(pks: Iterable[Any], *, now: datetime | None = None) -> list[ChainCheckpoint]:
    """Before retention deletes the events ``pks``: store signed prune records of their
    links (:func:`record_pruned`), then delete those links and any queue entries. Call it in
    the transaction that deletes the events, after :func:`lock_chain`."""
    keys = keys_in(pks)
    records = record_pruned(keys, now=now)
    EventChainLink.objects.filter(event_uuid__in=keys)._raw_delete(connection.alias)
    EventChainPending.objects.filter(event_uuid__in=keys)._raw_delete(connection.alias)
    return records


def record_pruned(pks: Any, *, now: datetime | None = None) -> list[ChainCheckpoint]:
    """Store a signed prune record for every run of consecutive sequences among the links of
    the events ``pks`` (pks, or :func:`keys_in` of them)."""
    rows = cast(
        "Iterable[tuple[int, str, str]]",
        EventChainLink.objects.filter(event_uuid__in=pks)
        .order_by("sequence")
        .values_list("sequence", "prev_hash", "chain_hash"),
    )
    now = now or timezone.now()
    runs = (
        PrunedRun(run[0][0], run[-1][0], run[0][1], run[-1][2], len(run)) for run in _runs(rows)
    )
    records = [_checkpoint(record, now) for record in prune_records(runs, now)]
    ChainCheckpoint.objects.bulk_create(records)
    return records


@dataclass(frozen=True)
class PrunedRun:
    """Consecutive removed links: the first's sequence and ``prev_hash``, the last's sequence
    and ``chain_hash``, and how many."""

    first_sequence: int
    last_sequence: int
    first_prev: str
    last_hash: str
    count: int


def prune_records(runs: Iterable[PrunedRun], now: datetime) -> list[CheckpointRecord]:
    """One signed prune record per run, created at ``now`` (not stored)."""
    key = chain_key()
    signer = key_id(key)
    created = iso_utc(now)
    records: list[CheckpointRecord] = []
    for run in runs:
        record: CheckpointRecord = {
            "kind": ChainRecordKind.PRUNE.value,
            "sequence": run.last_sequence,
            "chain_hash": run.last_hash,
            "created": created,
            "first_sequence": run.first_sequence,
            "last_sequence": run.last_sequence,
            "first_prev": run.first_prev,
            "last_hash": run.last_hash,
            "count": run.count,
            "signature": "",
            "key_id": signer,
        }
        record["signature"] = hmac.new(key, signed_payload(record), hashlib.sha256).hexdigest()
        records.append(record)
    return records


def record_runs(runs: Iterable[PrunedRun], *, now: datetime | None = None) -> int:
    """Store one signed prune record per run (in the transaction that removes the links);
    return how many. The same records as :func:`record_pruned` stores for the same runs."""
    now = now or timezone.now()
    records = prune_records(runs, now)
    if not records:
        return 0
    if connection.vendor != "postgresql" or not _space_separable(records):
        ChainCheckpoint.objects.bulk_create(_checkpoint(record, now) for record in records)
        return len(records)
    # One statement, each column one space-separated text (hex digests and numbers need no
    # quoting): a retention batch of scattered expired events can remove thousands of runs,
    # and quoting every value of arrays or placeholders costs more than storing the rows.
    columns = ("first_sequence", "last_sequence", "first_prev", "last_hash", "count", "signature")
    types = ("bigint", "bigint", "text", "text", "bigint", "text")
    arrays = ", ".join(f"string_to_array(%s, ' ')::{kind}[]" for kind in types)
    table = connection.ops.quote_name(ChainCheckpoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (kind, sequence, chain_hash, created, first_sequence,
                last_sequence, first_prev, last_hash, count, signature, key_id)
            SELECT %s, last_sequence, last_hash, %s, first_sequence, last_sequence, first_prev,
                last_hash, count, signature, %s
            FROM unnest({arrays}) AS runs({", ".join(columns)})
            """,  # noqa: S608 - only the model's table name and fixed types are interpolated
            [
                ChainRecordKind.PRUNE.value,
                now,
                records[0]["key_id"],
                *(" ".join(str(record[column]) for record in records) for column in columns),  # type: ignore[literal-required]
            ],
        )
    return len(records)


def _space_separable(records: Iterable[CheckpointRecord]) -> bool:
    """Whether the hashes taken from the links survive being joined with spaces (they are hex,
    unless someone wrote something else into a link)."""
    return all(
        record["first_prev"]
        and record["last_hash"]
        and " " not in record["first_prev"]
        and " " not in record["last_hash"]
        for record in records
    )


def _checkpoint(record: CheckpointRecord, created: datetime) -> ChainCheckpoint:
    fields = {name: value for name, value in record.items() if name != "created"}
    return ChainCheckpoint(created=created, **fields)


def runs_from_ends(rows: Iterable[tuple[int, str, str, bool, bool]]) -> Iterator[PrunedRun]:
    """The runs, from the first and last link of each in sequence order: rows of
    ``(sequence, prev_hash, chain_hash, starts_a_run, ends_a_run)`` (a link alone is both),
    as :data:`RUN_ENDS_SQL` gives them."""
    first: tuple[int, str] | None = None
    for sequence, prev_hash, chain_hash, starts, ends in rows:
        if starts:
            first = (int(sequence), str(prev_hash))
        if ends:
            if first is None:
                raise ValueError(f"the run ending at sequence {sequence} has no start")
            count = int(sequence) - first[0] + 1
            yield PrunedRun(first[0], int(sequence), first[1], str(chain_hash), count)
            first = None


# The first and last link of every run of consecutive sequences among ``{links}`` (rows of
# ``sequence, prev_hash, chain_hash``; sequences are unique): a link starts a run unless the one
# before it is there, and ends one unless the one after it is. One sort of the removed links,
# and the database sends back at most two rows per run instead of every link.
RUN_ENDS_SQL = """
    SELECT sequence, prev_hash, chain_hash,
        lag(sequence) OVER by_sequence IS DISTINCT FROM sequence - 1 AS starts_run,
        lead(sequence) OVER by_sequence IS DISTINCT FROM sequence + 1 AS ends_run
    FROM {links}
    WINDOW by_sequence AS (ORDER BY sequence)
"""


def _runs(rows: Iterable[tuple[int, str, str]]) -> Iterator[list[tuple[int, str, str]]]:
    run: list[tuple[int, str, str]] = []
    for row in rows:
        if run and row[0] != run[-1][0] + 1:
            yield run
            run = []
        run.append(row)
    if run:
        yield run


# --- Verification -------------------------------------------------------------------------------


class Breach(StrEnum):
    CONTENT_CHANGED = "content_changed"
    LINK_BROKEN = "link_broken"
    EVENTS_MISSING = "events_missing"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    FORGED_CHECKPOINT = "forged_checkpoint"
    NOT_CHAINED = "not_chained"


BREACH_LABELS = {
    Breach.CONTENT_CHANGED: "content changed",
    Breach.LINK_BROKEN: "link broken",
    Breach.EVENTS_MISSING: "events missing",
    Breach.CHECKPOINT_MISMATCH: "checkpoint mismatch",
    Breach.FORGED_CHECKPOINT: "forged checkpoint",
    Breach.NOT_CHAINED: "events not chained",
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


class _Found(Exception):  # control flow: never leaves this module
    def __init__(self, broken: BrokenLink) -> None:
        self.broken = broken


class _Peek:
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
class _Anchor:
    """A signed statement that the link at ``sequence`` has ``chain_hash``."""

    sequence: int
    chain_hash: str
    record: Mapping[str, Any]
    origin: str


def count_sealed(*, from_sequence: int = 1, to_sequence: int | None = None) -> int:
    """How many links a verification of this range walks."""
    return _links(from_sequence, to_sequence).count()


def _links(from_sequence: int, to_sequence: int | None) -> QuerySet[EventChainLink]:
    queryset = EventChainLink.objects.filter(sequence__gte=from_sequence)
    if to_sequence is not None:
        queryset = queryset.filter(sequence__lte=to_sequence)
    return queryset


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
    The result names the first broken link. A range that starts after 1 is anchored on the
    link just before it."""
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


def verify_and_report() -> Verification:
    """Verify the whole chain (the scheduler runs this daily); a broken link is logged and
    recorded as a ``system_task_exception`` event, which the default rules notify the
    administrators of, every day until it is dealt with."""
    seal_pending()
    result = verify()
    broken = result.first_broken
    if broken is None:
        logger.info("%s", result.summary())
        return result
    logger.error("%s", broken.message)
    Event.new(
        EventAction.SYSTEM_TASK_EXCEPTION,
        __name__,
        message=broken.message,
        task="verify_event_chain",
        sequence=broken.sequence,
        event_pk=broken.event_pk,
        reason=str(broken.reason),
    ).save()
    return result


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
        self.expected, self.prev = _anchor_before(from_sequence)
        # The first link since the last verified one whose event is gone: (sequence, pk).
        self.gone: tuple[int, str] | None = None
        self.pruned_ends: dict[int, str] = {}
        self.prunes = _Peek(
            ChainCheckpoint.objects.filter(
                kind=ChainRecordKind.PRUNE, first_sequence__gte=self.expected or from_sequence
            )
            .order_by("first_sequence", "pk")
            .iterator()
        )
        self.anchors = _Peek(_anchors(from_sequence, to_sequence, extra))

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
        self._check_anchors(sequence - 1)
        event = {name: row[f"event__{name}"] for name in CANONICAL_FIELDS}
        if _content_hash(row["prev_hash"], event) != row["chain_hash"]:
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
        self._check_anchors(sequence, row["chain_hash"], pk)
        self.expected, self.prev = sequence + 1, row["chain_hash"]
        self.pruned_ends.clear()
        self.gone = None
        self.result.verified += 1
        self.result.last_verified = sequence

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

    def _check_anchors(
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
        self._check_anchors(self.expected - 1)
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


def _content_hash(prev: str | None, event: Mapping[str, Any]) -> str | None:
    try:
        return link_hash(prev, canonical_event(event))
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


def _anchor_before(from_sequence: int) -> tuple[int | None, str | None]:
    """Where a walk from ``from_sequence`` starts: after the closest link before it (an
    event, or the end of a range retention removed), or at the genesis."""
    if from_sequence <= 1:
        return 1, GENESIS
    link = _highest(_last_link(before=from_sequence), _last_pruned(before=from_sequence))
    return (link.sequence + 1, link.chain_hash) if link else (None, None)


def _anchors(
    from_sequence: int, to_sequence: int | None, extra: Sequence[Mapping[str, Any]]
) -> Iterator[_Anchor]:
    """Stored checkpoints and the given records, in sequence order."""
    stored = ChainCheckpoint.objects.filter(
        kind=ChainRecordKind.CHECKPOINT, sequence__gte=from_sequence
    )
    if to_sequence is not None:
        stored = stored.filter(sequence__lte=to_sequence)
    stored_anchors = (
        _Anchor(c.sequence, c.chain_hash, checkpoint_record(c), "checkpoint")
        for c in stored.order_by("sequence", "pk").iterator()
    )
    given = sorted(
        (
            _Anchor(int(r["sequence"]), str(r["chain_hash"]), r, "exported checkpoint")
            for r in extra
            if int(r["sequence"]) >= from_sequence
            and (to_sequence is None or int(r["sequence"]) <= to_sequence)
        ),
        key=lambda anchor: anchor.sequence,
    )
    return heapq.merge(stored_anchors, given, key=lambda anchor: anchor.sequence)


def _short(digest: str | None) -> str:
    return f"{digest[:12]}..." if digest else "nothing"


def _key_note(record: Any) -> str:
    signer = record.get("key_id") if isinstance(record, Mapping) else record.key_id
    if signer and signer != key_id():
        return f" (signed with key {signer}, the configured key is {key_id()})"
    return ""


# --- Exported checkpoint files ------------------------------------------------------------------


class CheckpointFileError(ValueError):
    pass


_REQUIRED = ("kind", "sequence", "chain_hash", "created", "signature")


def read_checkpoint_lines(lines: Iterable[str]) -> list[CheckpointRecord]:
    """Parse ``export_checkpoints`` output (JSON lines); prune records become anchors at the
    end of their range. Raises :class:`CheckpointFileError` naming the line that is wrong."""
    records: list[CheckpointRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise CheckpointFileError(f"line {number} is not JSON.") from None
        if not isinstance(record, dict):
            raise CheckpointFileError(f"line {number} is not a JSON object.")
        missing = [name for name in _REQUIRED if name not in record]
        if missing:
            raise CheckpointFileError(f"line {number} has no {', '.join(missing)}.")
        if not isinstance(record["sequence"], int) or isinstance(record["sequence"], bool):
            raise CheckpointFileError(f"line {number}: sequence must be a whole number.")
        records.append(record)  # type: ignore[arg-type]
    return records
