"""Removing events from the chain: retention and GDPR erasure delete events only together
with their links and a signed ``prune`` record of every removed run of sequences, in the
deleting transaction, so the gap they leave is accounted for. The chain owns its tables:
callers delete through :func:`delete_with_links` or embed :func:`unlink_sql`, or account for
a month's partitions with :func:`prune_partition` before dropping them, never touch the links
or the queue themselves."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from auditlog import rollups
from auditlog.chain.canonical import iso_utc
from auditlog.chain.links import keys_in
from auditlog.chain.signing import CheckpointRecord, chain_key, key_id, signed_payload
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)


def delete_with_links(pks: Iterable[Any], *, now: datetime | None = None) -> int:
    """Delete the events ``pks`` with their links and queue entries, storing signed prune
    records of the removed runs; return how many events were deleted. Call it in the
    deleting transaction, after :func:`~auditlog.chain.links.lock_chain`, once references
    to these events are cleared."""
    pks = list(pks)
    remove_from_chain(pks, now=now)
    keys = keys_in(pks)
    return int(Event.objects.filter(pk__in=keys)._raw_delete(connection.alias))


def remove_from_chain(pks: Iterable[Any], *, now: datetime | None = None) -> list[ChainCheckpoint]:
    """Before the events ``pks`` are deleted: store signed prune records of their links
    (:func:`record_pruned`), then delete those links and any queue entries. Call it in the
    transaction that deletes the events, after ``lock_chain``."""
    keys = keys_in(pks)
    rollups.subtract(keys)
    records = record_pruned(keys, now=now)
    EventChainLink.objects.filter(event_uuid__in=keys)._raw_delete(connection.alias)
    EventChainPending.objects.filter(event_uuid__in=keys)._raw_delete(connection.alias)
    return records


def unlink_sql(gone: str) -> str:
    """Common table expressions (PostgreSQL) to follow a ``WITH`` whose CTE ``gone`` returns
    the ``event_uuid`` of the events a statement deletes: they delete those events' links
    and queue entries, and ``chain_run_ends`` holds the ends of the removed runs (see
    :data:`RUN_ENDS_SQL`), which :func:`record_run_ends` turns into prune records. The links
    are looked up with one array, which the index walks in key order (cheaper than 10,000
    separate probes); the queue is small and gets a (hash) join, not a probe per event."""
    links = connection.ops.quote_name(EventChainLink._meta.db_table)
    pending = connection.ops.quote_name(EventChainPending._meta.db_table)
    ends = RUN_ENDS_SQL.format(links="chain_unlinked")
    return f"""
    chain_unlinked AS (
        DELETE FROM {links} WHERE event_uuid = ANY(ARRAY(SELECT event_uuid FROM {gone}))
        RETURNING sequence, prev_hash, chain_hash, event_uuid
    ), {rollups.unroll_sql(gone, "chain_unlinked")}, chain_unqueued AS (
        DELETE FROM {pending} AS p USING {gone} AS g WHERE p.event_uuid = g.event_uuid
    ), chain_run_ends AS (
        SELECT * FROM ({ends}) AS links WHERE starts_run OR ends_run
    )"""  # noqa: S608 - only table and CTE names are interpolated


def prune_partition(cursor: CursorWrapper, links: str, events: str) -> int:
    """Before a month's partitions are dropped whole (the link table's ``links`` and the
    events table's ``events``): store the signed prune records of the runs among the month's
    links (read, not deleted: the partition goes with ``DROP TABLE``) and delete the queue
    entries of its events; return how many prune records. In the dropping transaction, after
    ``lock_chain``. A month sealed in one stretch is one run: then only its first and last
    links are read (two index probes beside a count), else its links go through
    :data:`RUN_ENDS_SQL` once."""
    quote = connection.ops.quote_name
    table, pending = quote(links), quote(EventChainPending._meta.db_table)
    cursor.execute(
        f"DELETE FROM {pending} AS p USING {quote(events)} AS e"  # noqa: S608 - our own names
        " WHERE p.event_uuid = e.event_uuid"
    )
    cursor.execute(f"SELECT min(sequence), max(sequence), count(*) FROM {table}")  # noqa: S608
    first, last, count = cursor.fetchone()
    if not count:
        return 0
    if last - first + 1 == count:  # sequences are unique: one run without a gap
        cursor.execute(
            f"SELECT (SELECT prev_hash FROM {table} WHERE sequence = %s),"  # noqa: S608
            f" (SELECT chain_hash FROM {table} WHERE sequence = %s)",
            [first, last],
        )
        first_prev, last_hash = cursor.fetchone()
        return record_runs([PrunedRun(first, last, first_prev, last_hash, count)])
    cursor.execute(
        f"SELECT * FROM ({RUN_ENDS_SQL.format(links=table)}) AS links"  # noqa: S608
        " WHERE starts_run OR ends_run ORDER BY sequence"
    )
    return record_run_ends(cursor.fetchall())


def record_run_ends(rows: Iterable[tuple[int, str, str, bool, bool]]) -> int:
    """Store the prune records of the runs whose ends :func:`unlink_sql` returned (rows of
    ``sequence, prev_hash, chain_hash, starts_run, ends_run`` in sequence order)."""
    return record_runs(runs_from_ends(rows))


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
