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

The chain's link table is converted the same way (:data:`LINKS`: ``auditlog_eventchainlink``
partitioned by ``event_created``, keys ``(sequence, event_created)`` and ``(event_uuid,
event_created)``, copied in ``sequence`` order), after the events' table (``partition_events``)
or in the migration ``0014`` for a small installation. Every function takes the conversion it
works on; the default is the events'.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Conversion:
    """What converting one table takes: its names, the constraints of the plain and of the
    partitioned table (``(name suffix, definition)``; a plain constraint's name is the table's
    name and the suffix), the keyset order of the copy and the columns that name a row in
    the change log (``(column, type)``)."""

    table: partitions.Table
    new: str
    old: str
    log: str
    state: str
    plain_keys: tuple[tuple[str, str], ...]
    partitioned_keys: tuple[tuple[str, str], ...]
    order: tuple[tuple[str, str], ...]
    identity: tuple[tuple[str, str], ...]
    triggers: bool  # whether the partitioned table gets the events' partition triggers

    @property
    def name(self) -> str:
        return self.table.name


EVENTS = Conversion(
    table=partitions.EVENT_TABLE,
    new=NEW,
    old=OLD,
    log=LOG,
    state=STATE,
    plain_keys=(("_pkey", "PRIMARY KEY (event_uuid)"),),
    partitioned_keys=(("_pkey", "PRIMARY KEY (event_uuid, created)"),),
    order=(("created", "timestamptz"), ("event_uuid", "uuid")),
    identity=(("event_uuid", "uuid"), ("created", "timestamptz")),
    triggers=True,
)
LINKS = Conversion(
    table=partitions.LINK_TABLE,
    new="auditlog_eventchainlink_partitioned",
    old="auditlog_eventchainlink_unpartitioned",
    log="auditlog_eventchainlink_partitioning_log",
    state="auditlog_eventchainlink_partitioning",
    plain_keys=(("_pkey", "PRIMARY KEY (sequence)"), ("_event_uuid_key", "UNIQUE (event_uuid)")),
    partitioned_keys=(
        ("_pkey", "PRIMARY KEY (sequence, event_created)"),
        ("_event_uuid_key", "UNIQUE (event_uuid, event_created)"),
    ),
    order=(("sequence", "bigint"),),
    identity=(("sequence", "bigint"), ("event_created", "timestamptz")),
    triggers=False,
)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return bool(cursor.fetchone()[0])


def _columns(columns: tuple[tuple[str, str], ...], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{name}" for name, _ in columns)


def state(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> str:
    """``partitioned`` (done), ``copying`` (prepared, maybe partly copied) or ``plain``."""
    if partitions.is_partitioned(cursor, conversion.name):
        return "partitioned"
    return "copying" if _exists(cursor, conversion.state) else "plain"


def prepare(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> None:
    """Step 1 (idempotent): the partitioned table, the change log and the progress row."""
    c = conversion
    if _exists(cursor, c.state):
        return
    table = _q(c.name)
    cursor.execute(
        f"CREATE TABLE {_q(c.new)} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        f" INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({c.table.key})"
    )
    for suffix, definition in c.partitioned_keys:
        cursor.execute(f"ALTER TABLE {_q(c.new)} ADD CONSTRAINT {_q(c.new + suffix)} {definition}")
    for name, definition in _indexes(cursor, c.name):
        match = _INDEX.match(definition)
        if match is None or match.group(1):
            raise RuntimeError(f"cannot carry over the index {name}: {definition}")
        rest = definition[match.end() :]
        cursor.execute(f"CREATE INDEX {_q(name + TEMPORARY_SUFFIX)} ON {_q(c.new)} {rest}")
    cursor.execute(f"SELECT min({c.table.key}) FROM {table}")  # noqa: S608 - our own names
    oldest = cursor.fetchone()[0]
    partitions.ensure_partitions(since=oldest, parent=c.new, table=c.table)
    identity = ", ".join(f"{name} {kind} NOT NULL" for name, kind in c.identity)
    cursor.execute(
        f"CREATE TABLE {_q(c.log)} (id bigserial PRIMARY KEY, op char(1) NOT NULL, {identity})"
    )
    for op, event in (("I", "INSERT"), ("D", "DELETE")):
        function = _q(f"{c.log}_{op.lower()}")
        rows = "NEW TABLE" if op == "I" else "OLD TABLE"
        columns = _columns(c.identity)
        body = f"INSERT INTO {_q(c.log)} (op, {columns}) SELECT '{op}', {columns}"
        cursor.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" {body} FROM changed; RETURN NULL; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER {_q(f'{c.log}_{op.lower()}')} AFTER {event} ON {table}"
            f" REFERENCING {rows} AS changed FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    position = ", ".join(f"last_{name} {kind}" for name, kind in c.order)
    cursor.execute(
        f"CREATE TABLE {_q(c.state)} (id int PRIMARY KEY, {position},"
        " copied bigint NOT NULL DEFAULT 0, started timestamptz NOT NULL)"
    )
    cursor.execute(f"INSERT INTO {_q(c.state)} (id, started) VALUES (1, %s)", [timezone.now()])  # noqa: S608


def _indexes(cursor: CursorWrapper, table: str) -> list[tuple[str, str]]:
    """The indexes of ``table`` but those of its constraints (primary key, unique):
    ``(name, definition)``."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
        " JOIN pg_class AS c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        [table],
    )
    return [(str(name), str(definition)) for name, definition in cursor.fetchall()]


def progress(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> tuple[int, int]:
    """``(copied so far, rows of the plain table (estimate))``."""
    cursor.execute(f"SELECT copied FROM {_q(conversion.state)}")  # noqa: S608
    copied = int(cursor.fetchone()[0])
    cursor.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [conversion.name]
    )
    return copied, max(int(cursor.fetchone()[0]), copied)


def copy_batch(
    cursor: CursorWrapper, batch_size: int = BATCH_SIZE, conversion: Conversion = EVENTS
) -> int:
    """Step 2: copy the next batch after the recorded position, recording the new position in
    the same statement; return how many rows (0: the copy is complete)."""
    c = conversion
    table, state_table = _q(c.name), _q(c.state)
    order = _columns(c.order)
    last = _columns(c.order, "last_")
    cursor.execute(f"SELECT {last} FROM {state_table} WHERE id = 1 FOR UPDATE")  # noqa: S608
    position = list(cursor.fetchone())
    placeholders = ", ".join("%s" for _ in c.order)
    after = "" if position[0] is None else f"WHERE ({order}) > ({placeholders})"
    descending = ", ".join(f"{name} DESC" for name, _ in c.order)
    assignments = ", ".join(f"last_{name} = last.{name}" for name, _ in c.order)
    cursor.execute(
        f"""
        WITH batch AS MATERIALIZED (
            SELECT * FROM {table} {after} ORDER BY {order} LIMIT %s
        ), copied AS (
            INSERT INTO {_q(c.new)} SELECT * FROM batch ON CONFLICT DO NOTHING
        ), last AS (
            SELECT {order} FROM batch ORDER BY {descending} LIMIT 1
        )
        UPDATE {state_table} AS s SET {assignments},
            copied = s.copied + (SELECT count(*) FROM batch)
        FROM last WHERE s.id = 1
        RETURNING (SELECT count(*) FROM batch)
        """,  # noqa: S608 - only our own table and column names are interpolated
        [*(position if position[0] is not None else []), batch_size],
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def catch_up(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> int:
    """Apply the logged changes of the plain table to the partitioned one (deletes, then the
    rows logged as inserted that the plain table still holds); return how many log rows."""
    c = conversion
    table, log, new = _q(c.name), _q(c.log), _q(c.new)
    cursor.execute(f"SELECT max(id) FROM {log}")  # noqa: S608
    upto = cursor.fetchone()[0]
    if upto is None:
        return 0
    same = " AND ".join(f"n.{name} = l.{name}" for name, _ in c.identity)
    cursor.execute(
        f"DELETE FROM {new} AS n USING {log} AS l WHERE l.id <= %s AND l.op = 'D' AND {same}",  # noqa: S608
        [upto],
    )
    identity = _columns(c.identity)
    cursor.execute(
        f"INSERT INTO {new} SELECT e.* FROM {table} AS e"  # noqa: S608
        f" WHERE ({_columns(c.identity, 'e.')}) IN (SELECT {identity} FROM {log}"
        " WHERE id <= %s AND op = 'I') ON CONFLICT DO NOTHING",
        [upto],
    )
    cursor.execute(f"DELETE FROM {log} WHERE id <= %s", [upto])  # noqa: S608
    return int(upto)


def swap(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> None:
    """Step 3, in the caller's transaction: the partitioned table takes the plain one's place."""
    c = conversion
    name = c.name
    cursor.execute(f"LOCK TABLE {_q(name)} IN ACCESS EXCLUSIVE MODE")
    while copy_batch(cursor, conversion=c):  # what the last batches left (normally nothing)
        pass
    catch_up(cursor, c)
    for op in ("i", "d"):
        cursor.execute(f"DROP TRIGGER {_q(f'{c.log}_{op}')} ON {_q(name)}")
        cursor.execute(f"DROP FUNCTION {_q(f'{c.log}_{op}')}()")
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE tgrelid = %s::regclass AND NOT tgisinternal",
        [name],
    )
    triggers = cursor.fetchall()
    old_indexes = [index for index, _ in _indexes(cursor, name)]
    cursor.execute(f"ALTER TABLE {_q(name)} RENAME TO {_q(c.old)}")
    for suffix, _ in c.plain_keys:
        cursor.execute(
            f"ALTER TABLE {_q(c.old)} RENAME CONSTRAINT {_q(name + suffix)} TO {_q(c.old + suffix)}"
        )
    for index in old_indexes:
        cursor.execute(f"ALTER INDEX {_q(index)} RENAME TO {_q(index + OLD_SUFFIX)}")
    cursor.execute(f"ALTER TABLE {_q(c.new)} RENAME TO {_q(name)}")
    for suffix, _ in c.partitioned_keys:
        cursor.execute(
            f"ALTER TABLE {_q(name)} RENAME CONSTRAINT {_q(c.new + suffix)} TO {_q(name + suffix)}"
        )
    for index in old_indexes:
        cursor.execute(f"ALTER INDEX {_q(index + TEMPORARY_SUFFIX)} RENAME TO {_q(index)}")
    for trigger, definition in triggers:
        cursor.execute(f"DROP TRIGGER {_q(trigger)} ON {_q(c.old)}")
        cursor.execute(definition.replace(f" ON public.{c.old} ", f" ON public.{name} "))
    if c.triggers:
        partitions.install_triggers(cursor)
    cursor.execute(f"DROP TABLE {_q(c.log)}, {_q(c.state)}")


def drop_old(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> bool:
    """Step 4: drop the plain table kept by :func:`swap`; whether there was one."""
    if not _exists(cursor, conversion.old):
        return False
    cursor.execute(f"DROP TABLE {_q(conversion.old)}")
    return True


def unpartition(cursor: CursorWrapper, conversion: Conversion = EVENTS) -> None:
    """The reverse of the conversion (migrating back before ``0012``, or ``0014`` for the
    links), in the caller's transaction: a plain table with the plain keys and the same
    indexes (and, for the events, the chain's queue trigger), holding every row; the
    partitioned table is dropped."""
    c = conversion
    name, was = c.name, f"{c.name}_was_partitioned"
    indexes = _indexes(cursor, name)
    cursor.execute(f"LOCK TABLE {_q(name)} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"ALTER TABLE {_q(name)} RENAME TO {_q(was)}")
    for suffix, _ in c.partitioned_keys:
        cursor.execute(f"ALTER INDEX {_q(name + suffix)} RENAME TO {_q(was + suffix)}")
    for index, _ in indexes:
        cursor.execute(f"ALTER INDEX {_q(index)} RENAME TO {_q(index + OLD_SUFFIX)}")
    cursor.execute(
        f"CREATE TABLE {_q(name)} (LIKE {_q(was)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING STORAGE INCLUDING COMMENTS)"
    )
    for suffix, definition in c.plain_keys:
        cursor.execute(f"ALTER TABLE {_q(name)} ADD CONSTRAINT {_q(name + suffix)} {definition}")
    cursor.execute(f"INSERT INTO {_q(name)} SELECT * FROM {_q(was)}")  # noqa: S608
    for _, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY public.", " ON public."))
    cursor.execute(f"DROP TABLE {_q(was)}")  # its partitions and triggers with it
    if c.triggers:
        cursor.execute(
            f"CREATE TRIGGER auditlog_event_chain_queue AFTER INSERT ON {_q(name)}"
            " REFERENCING NEW TABLE AS inserted_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION auditlog_event_chain_queue()"
        )


def convert(
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    on_batch: Callable[[int], object] | None = None,
    conversion: Conversion = EVENTS,
) -> bool:
    """Steps 1 to 3 (resuming where an earlier run stopped); whether the table is partitioned
    at the end (``False`` when ``max_batches`` stopped the copy first)."""
    with connection.cursor() as cursor:
        if state(cursor, conversion) == "partitioned":
            return True
        with transaction.atomic():
            prepare(cursor, conversion)
        batches = 0
        while max_batches is None or batches < max_batches:
            with transaction.atomic():
                copied = copy_batch(cursor, batch_size, conversion)
            if not copied:
                break
            batches += 1
            if on_batch is not None:
                on_batch(copied)
        else:
            return False
        with transaction.atomic():
            catch_up(cursor, conversion)  # the bulk of the changes, before the lock
        with transaction.atomic():
            swap(cursor, conversion)
    return True
