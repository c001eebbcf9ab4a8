"""The chain's links and queue: the lock one sealer (or retention) holds, the queue of events
waiting to be sealed, the head of the chain, and the rule that tells a backdated event.

Events are queued by a database trigger (migrations ``0004_event_chain`` and
``0008_chain_queued_at``) on PostgreSQL and SQLite, inside the inserting statement, with the
database's clock at that moment (``queued_at``). On other databases there is no trigger; the
unsealed events are then the ones without a link (an anti-join), with no clock of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

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


def insert_links(links: list[EventChainLink]) -> None:
    """Write new links in one statement. On PostgreSQL five array parameters and ``unnest``:
    the ORM's ``bulk_create`` spends more building and converting 5,000 parameters than the
    server spends storing the rows."""
    if connection.vendor != "postgresql":
        EventChainLink.objects.bulk_create(links)
        return
    table = connection.ops.quote_name(EventChainLink._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (sequence, event_uuid, prev_hash, chain_hash, queued_at)
            SELECT * FROM unnest(
                %s::bigint[], %s::uuid[], %s::varchar[], %s::varchar[], %s::timestamptz[]
            )""",  # noqa: S608 - only the model's table name is interpolated
            [
                [link.sequence for link in links],
                [link.event_uuid for link in links],
                [link.prev_hash for link in links],
                [link.chain_hash for link in links],
                [link.queued_at for link in links],
            ],
        )


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
    behind = (queued_at - created).total_seconds()
    if behind <= settings.AUDIT_CHAIN_BACKDATE_BOUND.total_seconds() or imported(context):
        return None
    return behind
