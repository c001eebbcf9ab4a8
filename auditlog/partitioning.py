"""Converting a plain events table (PostgreSQL) into the partitioned one of
:mod:`auditlog.partitions` without losing an event, resumably (``manage.py partition_events``,
and the migration ``0012`` for a new or small installation):

1. :func:`prepare`: the partitioned table ``auditlog_event_partitioned`` (the same columns,
   primary key ``(event_uuid, created)``, the same indexes under temporary names, a partition
   for every month from the oldest event to two months ahead and a default one), a log of the
   rows inserted into or deleted from the plain table from now on (statement triggers), and a
   one-row progress table;
2. :func:`copy_batch`, again and again: the next keyset batch in ``(created, event_uuid)``
   order, copied with the progress recorded in the same transaction, so an interrupted copy
   resumes where it stopped;
3. :func:`swap`: in one short transaction under an exclusive lock of the plain table, what the
   log holds is applied (inserts and deletes since the copy started), the tables are renamed
   (the plain one becomes ``auditlog_event_unpartitioned``, its indexes keep a ``_unpart``
   suffix), the indexes take their names, and the plain table's triggers (the chain's queue
   trigger) move to the partitioned one;
4. :func:`drop_old`: the plain table is dropped when the operator says so.

The copy writes into a table without the queue trigger: the copied events are queued or
chained already, and are neither queued again nor sealed twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from auditlog import partitions

NEW = "auditlog_event_partitioned"
OLD = "auditlog_event_unpartitioned"
LOG = "auditlog_event_partitioning_log"
STATE = "auditlog_event_partitioning"
TEMPORARY_SUFFIX = "_part"
OLD_SUFFIX = "_unpart"
BATCH_SIZE = 10_000

_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (\S+) ")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return bool(cursor.fetchone()[0])


def state(cursor: CursorWrapper) -> str:
    """``partitioned`` (done), ``copying`` (prepared, maybe partly copied) or ``plain``."""
    if partitions.is_partitioned(cursor, partitions.EVENTS):
        return "partitioned"
    return "copying" if _exists(cursor, STATE) else "plain"


def prepare(cursor: CursorWrapper) -> None:
    """Step 1 (idempotent): the partitioned table, the change log and the progress row."""
    if _exists(cursor, STATE):
        return
    events = _q(partitions.EVENTS)
    cursor.execute(
        f"CREATE TABLE {_q(NEW)} (LIKE {events} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (created)"
    )
    cursor.execute(
        f"ALTER TABLE {_q(NEW)} ADD CONSTRAINT {_q(NEW + '_pkey')}"
        " PRIMARY KEY (event_uuid, created)"
    )
    for name, definition in _indexes(cursor, partitions.EVENTS):
        match = _INDEX.match(definition)
        if match is None or match.group(1):
            raise RuntimeError(f"cannot carry over the index {name}: {definition}")
        rest = definition[match.end() :]
        cursor.execute(f"CREATE INDEX {_q(name + TEMPORARY_SUFFIX)} ON {_q(NEW)} {rest}")
    cursor.execute(f"SELECT min(created) FROM {events}")  # noqa: S608 - our own names
    oldest = cursor.fetchone()[0]
    partitions.ensure_partitions(since=oldest, parent=NEW)
    cursor.execute(
        f"CREATE TABLE {_q(LOG)} (id bigserial PRIMARY KEY, op char(1) NOT NULL,"
        " event_uuid uuid NOT NULL, created timestamptz NOT NULL)"
    )
    for op, event in (("I", "INSERT"), ("D", "DELETE")):
        function = _q(f"{LOG}_{op.lower()}")
        rows = "NEW TABLE" if op == "I" else "OLD TABLE"
        body = f"INSERT INTO {_q(LOG)} (op, event_uuid, created) SELECT '{op}', event_uuid, created"
        cursor.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" {body} FROM changed; RETURN NULL; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER {_q(f'{LOG}_{op.lower()}')} AFTER {event} ON {events}"
            f" REFERENCING {rows} AS changed FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    cursor.execute(
        f"CREATE TABLE {_q(STATE)} (id int PRIMARY KEY, last_created timestamptz,"
        " last_uuid uuid, copied bigint NOT NULL DEFAULT 0, started timestamptz NOT NULL)"
    )
    cursor.execute(f"INSERT INTO {_q(STATE)} (id, started) VALUES (1, %s)", [timezone.now()])  # noqa: S608


def _indexes(cursor: CursorWrapper, table: str) -> list[tuple[str, str]]:
    """The indexes of ``table`` but its primary key: ``(name, definition)``."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
        " JOIN pg_class AS c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY c.relname",
        [table],
    )
    return [(str(name), str(definition)) for name, definition in cursor.fetchall()]


def progress(cursor: CursorWrapper) -> tuple[int, int]:
    """``(copied so far, rows of the plain table (estimate))``."""
    cursor.execute(f"SELECT copied FROM {_q(STATE)}")  # noqa: S608
    copied = int(cursor.fetchone()[0])
    cursor.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [partitions.EVENTS]
    )
    return copied, max(int(cursor.fetchone()[0]), copied)


def copy_batch(cursor: CursorWrapper, batch_size: int = BATCH_SIZE) -> int:
    """Step 2: copy the next batch after the recorded position, recording the new position in
    the same statement; return how many rows (0: the copy is complete)."""
    events, state_table = _q(partitions.EVENTS), _q(STATE)
    cursor.execute(f"SELECT last_created, last_uuid FROM {state_table} WHERE id = 1 FOR UPDATE")  # noqa: S608
    last_created, last_uuid = cursor.fetchone()
    after = "" if last_created is None else "WHERE (created, event_uuid) > (%s, %s)"
    position = [] if last_created is None else [last_created, last_uuid]
    cursor.execute(
        f"""
        WITH batch AS MATERIALIZED (
            SELECT * FROM {events} {after} ORDER BY created, event_uuid LIMIT %s
        ), copied AS (
            INSERT INTO {_q(NEW)} SELECT * FROM batch ON CONFLICT DO NOTHING
        ), last AS (
            SELECT created, event_uuid FROM batch ORDER BY created DESC, event_uuid DESC LIMIT 1
        )
        UPDATE {state_table} AS s SET last_created = last.created, last_uuid = last.event_uuid,
            copied = s.copied + (SELECT count(*) FROM batch)
        FROM last WHERE s.id = 1
        RETURNING (SELECT count(*) FROM batch)
        """,  # noqa: S608 - only our own table names are interpolated
        [*position, batch_size],
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def catch_up(cursor: CursorWrapper) -> int:
    """Apply the logged changes of the plain table to the partitioned one (deletes, then the
    rows logged as inserted that the plain table still holds); return how many log rows."""
    events, log, new = _q(partitions.EVENTS), _q(LOG), _q(NEW)
    cursor.execute(f"SELECT max(id) FROM {log}")  # noqa: S608
    upto = cursor.fetchone()[0]
    if upto is None:
        return 0
    cursor.execute(
        f"DELETE FROM {new} AS n USING {log} AS l WHERE l.id <= %s AND l.op = 'D'"  # noqa: S608
        " AND n.event_uuid = l.event_uuid AND n.created = l.created",
        [upto],
    )
    cursor.execute(
        f"INSERT INTO {new} SELECT e.* FROM {events} AS e"  # noqa: S608
        f" WHERE (e.event_uuid, e.created) IN (SELECT event_uuid, created FROM {log}"
        " WHERE id <= %s AND op = 'I') ON CONFLICT DO NOTHING",
        [upto],
    )
    cursor.execute(f"DELETE FROM {log} WHERE id <= %s", [upto])  # noqa: S608
    return int(upto)


def swap(cursor: CursorWrapper) -> None:
    """Step 3, in the caller's transaction: the partitioned table takes the plain one's place."""
    events = partitions.EVENTS
    cursor.execute(f"LOCK TABLE {_q(events)} IN ACCESS EXCLUSIVE MODE")
    while copy_batch(cursor):  # what the last batches left (normally nothing)
        pass
    catch_up(cursor)
    for op in ("i", "d"):
        cursor.execute(f"DROP TRIGGER {_q(f'{LOG}_{op}')} ON {_q(events)}")
        cursor.execute(f"DROP FUNCTION {_q(f'{LOG}_{op}')}()")
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = %s::regclass AND NOT tgisinternal",
        [events],
    )
    triggers = cursor.fetchall()
    old_indexes = [name for name, _ in _indexes(cursor, events)]
    cursor.execute(f"ALTER TABLE {_q(events)} RENAME TO {_q(OLD)}")
    cursor.execute(
        f"ALTER TABLE {_q(OLD)} RENAME CONSTRAINT {_q(events + '_pkey')} TO {_q(OLD + '_pkey')}"
    )
    for name in old_indexes:
        cursor.execute(f"ALTER INDEX {_q(name)} RENAME TO {_q(name + OLD_SUFFIX)}")
    cursor.execute(f"ALTER TABLE {_q(NEW)} RENAME TO {_q(events)}")
    cursor.execute(
        f"ALTER TABLE {_q(events)} RENAME CONSTRAINT {_q(NEW + '_pkey')} TO {_q(events + '_pkey')}"
    )
    for name in old_indexes:
        cursor.execute(f"ALTER INDEX {_q(name + TEMPORARY_SUFFIX)} RENAME TO {_q(name)}")
    for name, definition in triggers:
        cursor.execute(f"DROP TRIGGER {_q(name)} ON {_q(OLD)}")
        cursor.execute(definition.replace(f" ON public.{OLD} ", f" ON public.{events} "))
    partitions.install_triggers(cursor)
    cursor.execute(f"DROP TABLE {_q(LOG)}, {_q(STATE)}")


def drop_old(cursor: CursorWrapper) -> bool:
    """Step 4: drop the plain table kept by :func:`swap`; whether there was one."""
    if not _exists(cursor, OLD):
        return False
    cursor.execute(f"DROP TABLE {_q(OLD)}")
    return True


def unpartition(cursor: CursorWrapper) -> None:
    """The reverse of the conversion (migrating back before ``0012``), in the caller's
    transaction: a plain table with primary key ``event_uuid``, the same indexes and the
    chain's queue trigger, holding every event; the partitioned table is dropped."""
    events, was = partitions.EVENTS, f"{partitions.EVENTS}_was_partitioned"
    indexes = _indexes(cursor, events)
    cursor.execute(f"LOCK TABLE {_q(events)} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"ALTER TABLE {_q(events)} RENAME TO {_q(was)}")
    cursor.execute(f"ALTER INDEX {_q(events + '_pkey')} RENAME TO {_q(was + '_pkey')}")
    for name, _ in indexes:
        cursor.execute(f"ALTER INDEX {_q(name)} RENAME TO {_q(name + OLD_SUFFIX)}")
    cursor.execute(
        f"CREATE TABLE {_q(events)} (LIKE {_q(was)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING STORAGE INCLUDING COMMENTS)"
    )
    cursor.execute(f"ALTER TABLE {_q(events)} ADD PRIMARY KEY (event_uuid)")
    cursor.execute(f"INSERT INTO {_q(events)} SELECT * FROM {_q(was)}")  # noqa: S608
    for _, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY public.", " ON public."))
    cursor.execute(f"DROP TABLE {_q(was)}")  # its partitions and triggers with it
    cursor.execute(
        f"CREATE TRIGGER auditlog_event_chain_queue AFTER INSERT ON {_q(events)}"
        " REFERENCING NEW TABLE AS inserted_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION auditlog_event_chain_queue()"
    )


def convert(
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> bool:
    """Steps 1 to 3 (resuming where an earlier run stopped); whether the table is partitioned
    at the end (``False`` when ``max_batches`` stopped the copy first)."""
    with connection.cursor() as cursor:
        if state(cursor) == "partitioned":
            return True
        with transaction.atomic():
            prepare(cursor)
        batches = 0
        while max_batches is None or batches < max_batches:
            with transaction.atomic():
                copied = copy_batch(cursor, batch_size)
            if not copied:
                break
            batches += 1
            if on_batch is not None:
                on_batch(copied)
        else:
            return False
        with transaction.atomic():
            catch_up(cursor)  # the bulk of the changes, before the lock
        with transaction.atomic():
            swap(cursor)
    return True
