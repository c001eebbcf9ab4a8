"""What expires and how it is removed: the deletion of expired events, and GDPR erasure of a
deleted user's events (the retention in force is ``models.current_retention``).

Events leave only through the chain's pruning service (:mod:`auditlog.chain.pruning`), which
removes their links and stores signed prune records in the same transaction; references to a
deleted event from other apps' rows (every nullable foreign key to Event, e.g. a
notification's) are cleared, found from the model's metadata, so this module imports no app
above the event core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, cast
from uuid import UUID

from django.db import connection, models, transaction
from django.utils import timezone

from auditlog import partitions, rollups
from auditlog.chain import links as chain_links
from auditlog.chain import pruning, sealing
from auditlog.models import Event

logger = logging.getLogger(__name__)

RETENTION_BATCH_SIZE = 10_000


# --- Removing events ----------------------------------------------------------------------------


def delete_expired_events(
    *,
    now: datetime | None = None,
    batch_size: int = RETENTION_BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Delete every expired event in set-based batches; return how many were deleted.

    Each batch is its own short transaction, so concurrent writers never wait long, and a
    batch is deleted whole or not at all. Rows that refer to a deleted event (notifications)
    keep existing with the reference cleared. Queued events are sealed first; each batch
    removes the events from the chain with them (links, queue entries, signed prune records
    of the removed ranges, one per run of consecutive sequences) in the same transaction, so
    the event chain stays verifiable. Batches go oldest first, which is (nearly) chain order:
    a batch removes a few long runs of the chain, not thousands of scattered ones.
    """
    now = now or timezone.now()
    sealing.seal_pending()
    total = drop_expired_partitions(now, progress=progress)
    delete_batch = _delete_batch_sql if connection.vendor == "postgresql" else _delete_batch_orm
    # Each batch starts at the last expiry time of the one before: walking the expiry index
    # from its start again would step over every entry deleted so far, a cost that grows
    # with the square of the backlog. Whatever expired before that time was in an earlier
    # batch (or was written since this call started; the next run takes it).
    since: datetime | None = None
    while True:
        with transaction.atomic():
            chain_links.lock_chain()  # no sealer may chain an event this batch deletes
            batch = delete_batch(now, since, batch_size)
        if not batch.taken:
            break
        total += batch.deleted
        if progress is not None:
            progress(batch.deleted)
        if batch.taken < batch_size:
            break
        since = batch.last_expires
    if total:
        logger.info("Expired %d Events", total)
    return total


class _Batch(NamedTuple):
    taken: int
    deleted: int
    last_expires: datetime | None


def _delete_batch_orm(now: datetime, since: datetime | None, batch_size: int) -> _Batch:
    """One batch, in the caller's transaction, of events that expired by ``now`` (from
    ``since`` on)."""
    expired = Event.objects.expired(now)
    if since is not None:
        expired = expired.filter(expires__gte=since)
    rows = list(
        expired.order_by("expires", "created", "event_uuid").values_list("pk", "expires")[
            :batch_size
        ]
    )
    if not rows:
        return _Batch(0, 0, since)
    deleted = _delete_events([pk for pk, _ in rows])
    return _Batch(len(rows), deleted, rows[-1][1])


def _delete_events(pks: list[Any]) -> int:
    """Delete the events ``pks`` with their place in the chain, clearing references to them;
    in the caller's transaction, after ``lock_chain``."""
    keys = chain_links.keys_in(pks)
    for reference in _references():
        reference.model._base_manager.filter(**{f"{reference.field}__in": keys}).update(
            **{reference.field: None}
        )
    return pruning.delete_with_links(pks)


class _Reference(NamedTuple):
    model: type[models.Model]
    field: str
    column: str


@cache
def _references() -> tuple[_Reference, ...]:
    """Every nullable foreign key to an event's pk: rows of other apps that outlive the event
    they refer to (a notification's ``event``), found without importing those apps."""
    found = []
    for relation in Event._meta.related_objects:
        field = relation.field
        if not (relation.one_to_many or relation.one_to_one) or not field.null:
            continue
        if field.target_field.column != Event._meta.pk.column:
            raise NotImplementedError(f"{field} refers to an event by another field than its pk")
        found.append(_Reference(cast("type[models.Model]", field.model), field.name, field.column))
    return tuple(found)


def _quoted(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# One statement does a whole batch on the server: the batch's events by physical address (the
# cheapest delete), their links and queue entries (the chain's fragment, see
# chain.pruning.unlink_sql), the references to them, and only the ends of the removed runs of
# the chain come back. The links removed are exactly those of the events this statement
# deleted. Referring tables are small and may have no useful index, so they get a join.
# A physical address is one partition's: the partition (tableoid) is matched with it.
# Only table, column and CTE names are interpolated.
_BATCH_SQL = """
WITH batch AS MATERIALIZED (
    SELECT tableoid, ctid, expires FROM {events}
    WHERE expiring AND expires <= %s AND expires >= COALESCE(%s::timestamptz, '-infinity')
    ORDER BY expires, created, event_uuid
    LIMIT %s
), gone AS (
    DELETE FROM {events} WHERE ctid = ANY(ARRAY(SELECT ctid FROM batch))
        AND (tableoid, ctid) IN (SELECT tableoid, ctid FROM batch)
    RETURNING {gone_columns}
), {unlink}{cleared}
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone),
    (SELECT max(expires) FROM batch),
    ends.sequence, ends.prev_hash, ends.chain_hash, ends.starts_run, ends.ends_run
FROM (SELECT) AS counts LEFT JOIN chain_run_ends AS ends ON true
ORDER BY ends.sequence
"""


def _cleared_sql() -> str:
    """CTEs that clear the references to the events of CTE ``gone``."""
    quote = connection.ops.quote_name
    return "".join(
        f""", cleared_{number} AS (
    UPDATE {_quoted(reference.model)} SET {quote(reference.column)} = NULL
    WHERE {quote(reference.column)} IN (SELECT event_uuid FROM gone)
)"""  # noqa: S608 - only table, column and CTE names are interpolated
        for number, reference in enumerate(_references())
    )


@cache
def _batch_sql() -> str:
    return _BATCH_SQL.format(
        events=_quoted(Event),
        gone_columns=rollups.GONE_COLUMNS,
        unlink=pruning.unlink_sql("gone"),
        cleared=_cleared_sql(),
    )


def _delete_batch_sql(now: datetime, since: datetime | None, batch_size: int) -> _Batch:
    """One batch in one statement (PostgreSQL), in the caller's transaction, of events that
    expired by ``now`` (from ``since`` on)."""
    with connection.cursor() as cursor:
        cursor.execute(_batch_sql(), [now, since, batch_size])
        rows = cursor.fetchall()
    taken, deleted, last_expires = rows[0][:3]
    pruning.record_run_ends(row[3:] for row in rows if row[3] is not None)
    return _Batch(int(taken), int(deleted), last_expires or since)


# --- Whole partitions (PostgreSQL) --------------------------------------------------------------

# Without a links partition of the month (the link table not partitioned yet, see
# partitioning.LINKS): the events of a partition leave the chain and the roll-ups as a batch's
# do (see _BATCH_SQL), read from the partition instead of deleted row by row.
_PARTITION_SQL = """
WITH gone AS MATERIALIZED (SELECT {gone_columns} FROM {partition}), {unlink}{cleared}
SELECT (SELECT count(*) FROM gone),
    ends.sequence, ends.prev_hash, ends.chain_hash, ends.starts_run, ends.ends_run
FROM (SELECT) AS counts LEFT JOIN chain_run_ends AS ends ON true
ORDER BY ends.sequence
"""


def drop_expired_partitions(
    now: datetime, *, progress: Callable[[int], object] | None = None
) -> int:
    """Drop every month partition of the events table (PostgreSQL) whose month is over and
    whose events have all expired by ``now``, with the link table's partition of the same
    month; return how many events went with them.

    The disk is returned at once (no dead rows for vacuum). As for a batch, the events leave
    the chain (signed prune records of the removed runs, queue entries) and the roll-ups, and
    references to them are cleared, in the transaction that drops the partitions. The
    month's links are read once for the prune records and dropped with their partition; its
    roll-ups are the rows of its hours, deleted by key range. The partition is locked
    against writes (not reads) while this is computed; dropping it takes the events table's
    (and the link table's) exclusive lock for a moment.
    """
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        if not partitions.is_partitioned(cursor):
            return 0
        over = [p for p in partitions.partitions(cursor) if p.end is not None and p.end <= now]
        link_months = set()
        if partitions.is_partitioned(cursor, partitions.LINKS):
            link_months = {p.name for p in partitions.partitions(cursor, partitions.LINKS)}
    total = 0
    for partition in over:
        assert partition.start is not None
        assert partition.end is not None
        name = connection.ops.quote_name(partition.name)
        links = partitions.partition_name(partition.start, partitions.LINK_TABLE)
        with transaction.atomic(), connection.cursor() as cursor:
            chain_links.lock_chain()
            cursor.execute(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
            # Two walks of the partition's (expiring, expires) index, not a scan of its rows:
            # retention runs every few minutes, and a month kept for one event stays long.
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {name} WHERE NOT expiring)"  # noqa: S608
                f" OR EXISTS (SELECT 1 FROM {name} WHERE expiring AND expires > %s)",
                [now],
            )
            if cursor.fetchone()[0]:
                continue
            cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608
            (count,) = cursor.fetchone()
            if links in link_months:
                pruning.prune_partition(cursor, links, partition.name)
                rollups.forget_hours(partition.start, partition.end)
                _clear_references_to(cursor, name)
                cursor.execute(f"DROP TABLE {name}, {connection.ops.quote_name(links)}")
            else:
                if count:
                    cursor.execute(
                        _PARTITION_SQL.format(
                            gone_columns=rollups.GONE_COLUMNS,
                            partition=name,
                            unlink=pruning.unlink_sql("gone"),
                            cleared=_cleared_sql(),
                        )
                    )
                    rows = cursor.fetchall()
                    pruning.record_run_ends(row[1:] for row in rows if row[1] is not None)
                cursor.execute(f"DROP TABLE {name}")
        logger.info("Dropped partition %s with %d expired events", partition.name, count)
        total += int(count)
        if progress is not None and count:
            progress(int(count))
    return total


def _clear_references_to(cursor: Any, events: str) -> None:
    """Clear the references to the events of the partition ``events`` (quoted). The referring
    tables are small: each of their rows probes the partition's key, the partition is not
    read."""
    quote = connection.ops.quote_name
    for reference in _references():
        column = quote(reference.column)
        cursor.execute(
            f"UPDATE {_quoted(reference.model)} AS r SET {column} = NULL"  # noqa: S608
            f" WHERE r.{column} IS NOT NULL"
            f" AND EXISTS (SELECT 1 FROM {events} AS e WHERE e.event_uuid = r.{column})"
        )


def erase_user_events(
    user_pk: Any, user_uuid: Any, *, batch_size: int = RETENTION_BATCH_SIZE
) -> int:
    """GDPR erasure of a deleted user: delete every event by them (``user.pk``) and about
    them (``context.subject_uuid``); return how many. Events that merely mention them stay.

    Like retention, in short batches that each delete the events with their chain links and
    store signed prune records of the removed ranges, so the chain stays verifiable.
    """
    hex_uuid = user_uuid.hex if isinstance(user_uuid, UUID) else str(user_uuid).replace("-", "")
    about = models.Q(user__pk=user_pk) | models.Q(
        context__subject_uuid__in=[hex_uuid, str(UUID(hex_uuid))]
    )
    total = 0
    while True:
        with transaction.atomic():
            chain_links.lock_chain()
            pks = list(
                Event.objects.filter(about).order_by().values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                break
            total += _delete_events(pks)
        if len(pks) < batch_size:
            break
    if total:
        logger.info("Erased %d events of deleted user %s", total, user_pk)
    return total
