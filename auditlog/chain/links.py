"""The chain's links and queue: the lock one sealer (or retention) holds, the queue of events
waiting to be sealed, the head of the chain, and the rule that tells a backdated event.

Events are queued by a database trigger (migrations ``0004_event_chain`` and
``0008_chain_queued_at``) on PostgreSQL and SQLite, inside the inserting statement, with the
database's clock at that moment (``queued_at``). On other databases there is no trigger; the
unsealed events are then the ones without a link (an anti-join), with no clock of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from auditlog.chain.canonical import CANONICAL_FIELDS
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)

# "auditlog" in ASCII: the PostgreSQL advisory lock that one sealer (or retention) holds.
LOCK_ID = 0x6175_6469_746C_6F67
# The databases on which the migrations install the trigger that queues inserted events.
TRIGGER_VENDORS = frozenset({"postgresql", "sqlite"})
# What an unquoted element of an array literal must not hold (besides a comma).
_NEEDS_QUOTING = re.compile(r'[\s"{}\\]')
IMPORTED_KEY = "imported"
"""``context["imported"] = {"source": <name>, ...}`` marks an event taken over from another
system (an authentik import): its ``created`` is its original time, as old as it may be."""


# --- Locking ------------------------------------------------------------------------------------


def try_lock() -> bool:
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


@dataclass(frozen=True)
class Backlog:
    """The sealer's backlog: how many events wait to be sealed and since when."""

    unsealed: int
    oldest_created: datetime | None  # the ``created`` of the oldest waiting event
    oldest_queued: datetime | None  # when the trigger queued it (None where not recorded)

    def age_seconds(self, now: datetime) -> float | None:
        """How long the oldest waiting event has waited (from its queueing, else its
        ``created``); None when nothing waits."""
        since = self.oldest_queued or self.oldest_created
        return None if since is None else max((now - since).total_seconds(), 0.0)


def sealing_backlog() -> Backlog:
    """The unsealed events and the oldest of them (the sealer takes the oldest first, so a
    growing age says the sealer does not keep up or does not run)."""
    oldest: tuple[datetime, datetime | None] | None
    if queued_by_trigger():
        oldest = (
            EventChainPending.objects.order_by("created", "event_uuid")
            .values_list("created", "queued_at")
            .first()
        )
    else:
        created = unlinked_events().order_by("created", "pk").values_list("created", flat=True)
        first = created.first()
        oldest = (first, None) if first is not None else None
    if oldest is None:
        return Backlog(0, None, None)
    return Backlog(unsealed_count(), oldest[0], oldest[1])


def keys_in(pks: Iterable[Any]) -> Any:
    """The right-hand side of an ``__in`` lookup on many event pks. On PostgreSQL one array
    parameter: building and parsing 10,000 placeholders costs more than the rows they name."""
    keys = list(pks)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::uuid[])", [keys])
    return keys


class Taken(NamedTuple):
    """A queued event as the sealer takes it."""

    pk: UUID
    queued_at: datetime | str | None  # the database's clock when it was queued (see Backlog)
    linked: bool  # it has a link already: a row inserted again under the pk of a chained event
    event: dict[str, Any] | None  # its stored values (CANONICAL_FIELDS); None: it is gone
    behind: float | None  # how many seconds its ``created`` lies before ``queued_at``


def take_queued(batch_size: int) -> list[Taken]:
    """The oldest ``batch_size`` queued events in chain order (``created, event_uuid``), taken
    off the queue in the caller's transaction (a rollback puts them back). On PostgreSQL one
    statement (:data:`TAKE_SQL`), with the times as the canonical text."""
    if connection.vendor == "postgresql":
        return _take_postgresql(batch_size)
    queued = list(
        EventChainPending.objects.order_by("created", "event_uuid").values_list(
            "event_uuid", "queued_at"
        )[:batch_size]
    )
    keys = [key for key, _ in queued]
    linked = set(
        EventChainLink.objects.filter(event_uuid__in=keys).values_list("event_uuid", flat=True)
    )
    EventChainPending.objects.filter(pk__in=keys)._raw_delete(connection.alias)
    return _with_events([(key, key in linked, queued_at) for key, queued_at in queued])


def take_unlinked(batch_size: int) -> list[Taken]:
    """Without the queue trigger: the oldest ``batch_size`` events without a link."""
    keys = unlinked_events().order_by("created", "event_uuid").values_list("pk", flat=True)
    return _with_events([(key, False, None) for key in keys[:batch_size]])


def _with_events(queued: list[tuple[UUID, bool, datetime | None]]) -> list[Taken]:
    keys = keys_in(key for key, _, _ in queued)
    rows = {
        row["event_uuid"]: row
        for row in Event.objects.filter(pk__in=keys).values(*CANONICAL_FIELDS)
    }
    taken = []
    for key, linked, queued_at in queued:
        row = rows.get(key)
        behind = None
        if row is not None and queued_at is not None:
            behind = (queued_at - row["created"]).total_seconds()
        taken.append(Taken(key, queued_at, linked, row, behind))
    return taken


def _utc(column: str) -> str:
    """SQL: a timestamptz column as the canonical text (:func:`canonical.utc_text`)."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _table(model: Any) -> str:
    return str(connection.ops.quote_name(model._meta.db_table))


TAKE_SQL = """
WITH taken AS (
    DELETE FROM {pending} WHERE event_uuid = ANY(ARRAY(
        SELECT event_uuid FROM {pending} ORDER BY created, event_uuid LIMIT %s
    ))
    RETURNING event_uuid, created, queued_at
)
SELECT t.event_uuid, {queued_at}, l.linked IS NOT NULL, e.event_uuid IS NOT NULL,
    e.action, e.app, e."user", e.context, e.client_ip, {created}, {expires}, e.expiring,
    e.brand, EXTRACT(EPOCH FROM t.queued_at - e.created)::float8
FROM (SELECT * FROM taken ORDER BY created, event_uuid) AS t
LEFT JOIN LATERAL (
    SELECT true AS linked FROM {link} WHERE event_uuid = t.event_uuid LIMIT 1
) AS l ON true
LEFT JOIN LATERAL (
    (SELECT * FROM {events} WHERE event_uuid = t.event_uuid AND created = t.created)
    UNION ALL (SELECT * FROM {events} WHERE event_uuid = t.event_uuid)
    LIMIT 1
) AS e ON true
ORDER BY t.created, t.event_uuid
"""
"""The sealer's read on PostgreSQL: the queue's oldest entries, deleted and returned in one
statement (one snapshot: an entry queued meanwhile is neither deleted nor read), each with
whether a link names it and its event's values. The ``ARRAY`` and the ``LATERAL ... LIMIT 1``
keep every lookup an index probe per entry, whatever the planner thinks of the tables'
sizes (a hash over the whole link or events table grows with the chain). An event is looked
up with the ``created`` it was queued with first, which probes its month's partition alone;
only when that finds nothing (its ``created`` was changed since) does the second branch run,
probing every partition. The entries are put in order before the events are joined (the
joins keep it): sorting 5,000 whole rows took more than ``work_mem`` and went to disk.
Whether an entry is linked already is asked of every month of a partitioned link table (its
keys hold the month, see ``EventChainLink``): this check is what keeps an ``event_uuid``
linked once across months."""


def _take_postgresql(batch_size: int) -> list[Taken]:
    sql = TAKE_SQL.format(
        pending=_table(EventChainPending),
        link=_table(EventChainLink),
        events=_table(Event),
        queued_at=_utc("t.queued_at"),
        created=_utc("e.created"),
        expires=_utc("e.expires"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch_size])
        rows = cursor.fetchall()
    # The JSON columns come as text: decoded as the ORM decodes them (the verifier reads them
    # through the ORM).
    user, context, brand = (
        Event._meta.get_field(name).from_db_value  # type: ignore[union-attr]
        for name in ("user", "context", "brand")
    )
    taken = []
    for row in rows:
        pk, queued_at, linked, found, action, app = row[:6]
        event = None
        if found:
            event = {
                "event_uuid": pk,
                "action": action,
                "app": app,
                "user": user(row[6], None, connection),
                "context": context(row[7], None, connection),
                "client_ip": row[8],
                "created": row[9],
                "expires": row[10],
                "expiring": row[11],
                "brand": brand(row[12], None, connection),
            }
        taken.append(Taken(pk, queued_at, linked, event, row[13]))
    return taken


# A link as the sealer writes it: sequence, event pk, prev_hash, chain_hash, queued_at, and
# the event's created (the month partition of the link, see EventChainLink).
NewLink = tuple[int, UUID, str, str, datetime | str | None, datetime | str]


def insert_links(links: Sequence[NewLink]) -> None:
    """Write new links in one statement. On PostgreSQL six array parameters and ``unnest``,
    each array written as one literal (:func:`_array_literal`): the ORM's ``bulk_create``, or
    psycopg quoting each element of a list, spends more on the parameters than the server
    spends storing the rows."""
    if not links:
        return
    if connection.vendor != "postgresql":
        EventChainLink.objects.bulk_create(
            EventChainLink(
                sequence=sequence,
                event_uuid=pk,
                prev_hash=prev_hash,
                chain_hash=chain_hash,
                queued_at=queued_at,
                event_created=event_created,
            )
            for sequence, pk, prev_hash, chain_hash, queued_at, event_created in links
        )
        return
    table = connection.ops.quote_name(EventChainLink._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table}
                (sequence, event_uuid, prev_hash, chain_hash, queued_at, event_created)
            SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::varchar[], %s::varchar[],
                %s::timestamptz[], %s::timestamptz[])""",  # noqa: S608 - only the model's table name is interpolated
            [_array_literal(column) for column in zip(*links, strict=True)],
        )


def _array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of values whose text never needs quoting in one: whole
    numbers, UUIDs, hex digests and ISO 8601 times written without a space (a datetime is
    written so); ``None`` is NULL."""
    texts = [
        "NULL"
        if value is None
        else value.isoformat()
        if isinstance(value, datetime)
        else str(value)
        for value in values
    ]
    body = ",".join(texts)
    if _NEEDS_QUOTING.search(body) or body.count(",") != len(texts) - 1:
        raise ValueError("an array element that needs quoting")
    return "{" + body + "}"


# --- The head -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    sequence: int
    chain_hash: str


def chain_head() -> Link | None:
    """The last link: the newest sealed event, or the end of a range retention removed after
    it; ``None`` before the first seal."""
    return highest(last_link(), last_pruned())


def last_link(before: int | None = None) -> tuple[Any, Any] | None:
    links = EventChainLink.objects.all()
    if before is not None:
        links = links.filter(sequence__lt=before)
    return links.order_by("-sequence").values_list("sequence", "chain_hash").first()


def last_pruned(before: int | None = None) -> tuple[Any, Any] | None:
    records = ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
    if before is not None:
        records = records.filter(sequence__lt=before)
    return records.order_by("-sequence").values_list("sequence", "chain_hash").first()


def highest(*rows: tuple[Any, Any] | None) -> Link | None:
    links = [Link(int(row[0]), str(row[1])) for row in rows if row and row[0] is not None]
    return max(links, key=lambda link: link.sequence, default=None)


# --- Backdated events ---------------------------------------------------------------------------


def imported(context: Any) -> bool:
    """Whether the event says it was taken over from another system
    (``context["imported"]["source"]``), so an old ``created`` is its original time."""
    marker = context.get(IMPORTED_KEY) if isinstance(context, Mapping) else None
    return isinstance(marker, Mapping) and bool(marker.get("source"))


def backdated_by(created: datetime, queued_at: datetime | None, context: Any) -> float | None:
    """How many seconds an event's ``created`` lies before the database's clock when it was
    inserted (``queued_at``) beyond ``AUDIT_CHAIN_BACKDATE_BOUND``; ``None`` when within the
    bound, when there is no such clock (links sealed before it was recorded), or when the
    event says it was imported."""
    if queued_at is None:
        return None
    return beyond_backdate_bound((queued_at - created).total_seconds(), context)


def beyond_backdate_bound(behind: float | None, context: Any) -> float | None:
    """``behind`` (seconds an event's ``created`` lies before the database's clock when it
    was inserted) when it is more than ``AUDIT_CHAIN_BACKDATE_BOUND`` and the event does not
    say it was imported; else ``None``."""
    if behind is None or behind <= settings.AUDIT_CHAIN_BACKDATE_BOUND.total_seconds():
        return None
    return None if imported(context) else behind
