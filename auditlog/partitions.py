"""The events table partitioned by time on PostgreSQL: one range partition per calendar month
of ``created`` (UTC), made ahead by the scheduler, and a default partition, so no insert ever
fails for want of a partition. SQLite (and a PostgreSQL installation with
``AUDITLOG_PARTITION_EVENTS`` off) keeps the plain table.

What changes with partitions:

* the database's primary key is ``(event_uuid, created)`` (a partitioned table's unique keys
  must hold the partition key); Django keeps ``event_uuid`` as the model's pk, so lookups by
  pk work as before. ``event_uuid`` is unique per partition (by that key); across partitions
  it is unique because the application makes every uuid (uuid4) and the chain's link table
  holds each ``event_uuid`` once (an event can be chained only once);
* nothing refers to the events table by a database foreign key (``notifications.0002``);
* the chain's queue trigger is a statement trigger of the parent table (one set-based insert
  per statement, see ``0008_chain_queued_at``), which does not fire for a row written straight
  into a partition: those rows are queued by a row trigger of the parent, cloned onto every
  partition, that stays silent for inserts through the parent (a statement trigger before
  them sets a transaction-local flag that its ``WHEN`` reads), and for rows an ``UPDATE`` of
  ``created`` moves to another partition (queued or chained already), see
  :func:`install_triggers`;
* retention drops a whole month's partition once every event in it has expired
  (:func:`auditlog.retention.drop_expired_partitions`).

The chain's link table is partitioned the same way, by the month of its event's ``created``
(``event_created``), with the same month bounds: a month's partitions of both tables are made
together here, and dropped together by retention. Its database keys are ``(sequence,
event_created)`` and ``(event_uuid, event_created)`` (see ``EventChainLink``).

An installation whose events table (or link table) predates partitioning converts it with the
resumable ``manage.py partition_events`` (:mod:`auditlog.partitioning`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import connection, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

EVENTS = "auditlog_event"
DEFAULT = "auditlog_event_default"
PREFIX = "auditlog_event_p"
LINKS = "auditlog_eventchainlink"
LINKS_DEFAULT = "auditlog_eventchainlink_default"
LINKS_PREFIX = "auditlog_eventchainlink_p"
MONTHS_AHEAD = 2

_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def enabled() -> bool:
    """Whether events are (to be) partitioned: PostgreSQL, and the setting is on."""
    return connection.vendor == "postgresql" and bool(
        getattr(settings, "AUDITLOG_PARTITION_EVENTS", True)
    )


def is_partitioned(cursor: CursorWrapper, table: str = EVENTS) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table AS p JOIN pg_class AS c"
        " ON c.oid = p.partrelid WHERE c.relname = %s AND pg_table_is_visible(c.oid))",
        [table],
    )
    return bool(cursor.fetchone()[0])


@dataclass(frozen=True)
class Table:
    """A table partitioned by month: its name, the column it is partitioned on, and the names
    of its partitions."""

    name: str
    key: str
    prefix: str
    default: str


EVENT_TABLE = Table(EVENTS, "created", PREFIX, DEFAULT)
LINK_TABLE = Table(LINKS, "event_created", LINKS_PREFIX, LINKS_DEFAULT)


def month_of(moment: datetime) -> datetime:
    """The first instant (UTC) of the month of ``moment``."""
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return month.replace(year=index // 12, month=index % 12 + 1)


def partition_name(month: datetime, table: Table = EVENT_TABLE) -> str:
    return f"{table.prefix}{month:%Y_%m}"


@dataclass(frozen=True)
class Partition:
    """A partition of the events table; ``start``/``end`` are ``None`` for the default one."""

    name: str
    start: datetime | None
    end: datetime | None


def partitions(cursor: CursorWrapper, parent: str = EVENTS) -> list[Partition]:
    """The partitions of ``parent``, month partitions in time order, the default one last."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i"
        " JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [parent],
    )
    found = []
    for name, bound in cursor.fetchall():
        match = _BOUND.search(bound or "")
        if match:
            start, end = (datetime.fromisoformat(value) for value in match.groups())
            found.append(Partition(name, start.astimezone(UTC), end.astimezone(UTC)))
        else:
            found.append(Partition(name, None, None))
    return sorted(
        found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC))
    )


def _literal(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def create_month(
    cursor: CursorWrapper, month: datetime, parent: str = EVENTS, table: Table = EVENT_TABLE
) -> str:
    """Create the partition of ``month`` (if missing) of ``parent`` (``table``, or the table
    that a conversion makes to take its place). Rows of that month already in the default
    partition (written before their month had a partition) are moved into it."""
    name = partition_name(month, table)
    key = table.key
    start, end = _literal(month), _literal(add_months(month, 1))
    default = _default_of(cursor, parent)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return name
    quote = connection.ops.quote_name
    moving = False
    if default is not None:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {quote(default)}"  # noqa: S608 - our own names
            f" WHERE {key} >= {start} AND {key} < {end})"
        )
        moving = bool(cursor.fetchone()[0])
    if default is None or not moving:
        cursor.execute(
            f"CREATE TABLE {quote(name)} PARTITION OF {quote(parent)}"
            f" FOR VALUES FROM ({start}) TO ({end})"
        )
        return name
    # The rows move from the default partition into a table of their own, which then becomes
    # the month's partition (attaching checks that the default one keeps none of them). The
    # rows are queued or chained already: the plain table has no queue trigger (and links have
    # no trigger at all).
    cursor.execute(f"LOCK TABLE {quote(default)} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(
        f"CREATE TABLE {quote(name)} (LIKE {quote(parent)} INCLUDING DEFAULTS"
        " INCLUDING CONSTRAINTS INCLUDING STORAGE)"
    )
    cursor.execute(
        f"WITH moved AS (DELETE FROM {quote(default)} WHERE {key} >= {start}"  # noqa: S608
        f" AND {key} < {end} RETURNING *) INSERT INTO {quote(name)} SELECT * FROM moved"
    )
    cursor.execute(
        f"ALTER TABLE {quote(parent)} ATTACH PARTITION {quote(name)}"
        f" FOR VALUES FROM ({start}) TO ({end})"
    )
    return name


def _default_of(cursor: CursorWrapper, parent: str) -> str | None:
    defaults = [p.name for p in partitions(cursor, parent) if p.start is None]
    return defaults[0] if defaults else None


def ensure_partitions(
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    months_ahead: int | None = None,
    parent: str | None = None,
    table: Table = EVENT_TABLE,
) -> list[str]:
    """Make sure the events table and the chain's link table have a partition for every
    month from ``since`` (default: this month) to ``months_ahead`` months after this one, and
    a default partition; return the names of the partitions created. A table that is not
    partitioned is left alone. With ``parent``, only that table (``table``, or the one a
    conversion makes to take its place)."""
    if connection.vendor != "postgresql":
        return []
    if parent is None:
        return [
            *_ensure(now, since, months_ahead, EVENTS, EVENT_TABLE),
            *_ensure(now, since, months_ahead, LINKS, LINK_TABLE),
        ]
    return _ensure(now, since, months_ahead, parent, table)


def _ensure(
    now: datetime | None,
    since: datetime | None,
    months_ahead: int | None,
    parent: str,
    table: Table,
) -> list[str]:
    now = now or timezone.now()
    ahead = MONTHS_AHEAD if months_ahead is None else months_ahead
    created: list[str] = []
    with connection.cursor() as cursor:
        if not is_partitioned(cursor, parent):
            return []
        quote = connection.ops.quote_name
        listed = partitions(cursor, parent)
        default = next((p.name for p in listed if p.start is None), None)
        if default is None:
            default = table.default
            cursor.execute(f"CREATE TABLE {quote(default)} PARTITION OF {quote(parent)} DEFAULT")
            created.append(default)
        existing = {p.name for p in listed}
        first = month = month_of(since or now)
        last = add_months(month_of(now), ahead)
        while month <= last:
            if partition_name(month, table) not in existing:
                # One short transaction per month: moving rows out of the default partition
                # locks it, which PostgreSQL allows only inside a transaction.
                with transaction.atomic():
                    created.append(create_month(cursor, month, parent, table))
            month = add_months(month, 1)
        created += _split_default(cursor, parent, table, default, before=first)
    return created


def _split_default(
    cursor: CursorWrapper, parent: str, table: Table, default: str, *, before: datetime
) -> list[str]:
    """Give every month before ``before`` that has rows in the ``default`` partition (an
    import of old events, a backdated write, a month whose partition was never made) its
    partition, moving its rows there: in the default partition retention cannot drop them
    with their month, and no query can leave them out. One ``min()`` per such month finds
    them."""
    created: list[str] = []
    quote = connection.ops.quote_name
    after: datetime | None = None
    while True:
        cursor.execute(
            f"SELECT min({table.key}) FROM {quote(default)}"  # noqa: S608 - our own names
            f" WHERE {table.key} >= COALESCE(%s::timestamptz, '-infinity')",
            [after],
        )
        (oldest,) = cursor.fetchone()
        if oldest is None or oldest >= before:
            return created
        month = month_of(oldest)
        with transaction.atomic():
            created.append(create_month(cursor, month, parent, table))
        after = add_months(month, 1)


FLAG = "auditlog.events_via_parent"
PENDING = "auditlog_eventchainpending"
TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION auditlog_event_via_parent() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
        PERFORM set_config('{FLAG}', CASE WHEN TG_WHEN = 'BEFORE' THEN 'on' ELSE '' END, true);
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION auditlog_event_chain_queue_row() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN
        INSERT INTO {PENDING} (event_uuid, created, queued_at)
        VALUES (NEW.event_uuid, NEW.created, statement_timestamp())
        ON CONFLICT (event_uuid) DO NOTHING;
        RETURN NULL;
    END $$""",  # noqa: S608 - a constant of our own names
    f"""CREATE TRIGGER auditlog_event_via_parent BEFORE INSERT OR UPDATE ON {EVENTS}
    FOR EACH STATEMENT EXECUTE FUNCTION auditlog_event_via_parent()""",
    f"""CREATE TRIGGER auditlog_event_via_parent_done AFTER INSERT OR UPDATE ON {EVENTS}
    FOR EACH STATEMENT EXECUTE FUNCTION auditlog_event_via_parent()""",
    f"""CREATE TRIGGER auditlog_event_chain_queue_direct AFTER INSERT ON {EVENTS}
    FOR EACH ROW WHEN (current_setting('{FLAG}', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION auditlog_event_chain_queue_row()""",
]


def install_triggers(cursor: CursorWrapper) -> None:
    """Queue the rows written straight into a partition (see the module's docstring): the
    parent's statement trigger queues everything inserted through it."""
    for statement in TRIGGERS:
        cursor.execute(statement)


def check_autovacuum(
    app_configs: Any = None, databases: Any = None, **_: Any
) -> list[checks.CheckMessage]:
    """``auditlog.W021``: PostgreSQL's autovacuum is off. A new month's partition then never
    gets planner statistics, and with none the planner reads a lookup of events by id (every
    ingest and import checks which of its events are stored already) as matching every row:
    each batch scans the whole month, so ingest slows down as the month fills (measured: from
    6,800 to 900 events/s at 3.7 million events in a month). Retention's batched deletes also
    leave their dead rows behind."""
    problems: list[checks.CheckMessage] = []
    for alias in databases or []:
        if connections[alias].vendor != "postgresql":
            continue
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_setting('autovacuum')")
            (setting,) = cursor.fetchone()
        if setting != "on":
            problems.append(
                checks.Warning(
                    f"PostgreSQL's autovacuum is off on {alias!r}: the events' partitions get "
                    "no planner statistics, so ingest and imports slow down as a month fills.",
                    hint="Turn autovacuum on (ALTER SYSTEM SET autovacuum = on), or ANALYZE "
                    "auditlog_event after large loads.",
                    id="auditlog.W021",
                )
            )
    return problems
