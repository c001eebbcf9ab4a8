"""Helpers for the event chain's tests: a known signing key, small checkpoint intervals, events
written the ordinary way, and the raw SQL an attacker with database access would run."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection

from auditlog import chain
from auditlog.bulk import COLUMNS
from auditlog.models import Event, EventChainLink
from auditlog.services import record_event

TEST_KEY = "test-chain-key-that-is-long-enough-0123456789"
TRIGGER = "auditlog_event_chain_queue"


@pytest.fixture(autouse=True)
def chain_settings(settings: Any) -> Iterator[None]:
    settings.AUDIT_CHAIN_KEY = TEST_KEY
    settings.AUDIT_CHAIN_CHECKPOINT_EVENTS = 5
    settings.AUDIT_CHAIN_CHECKPOINT_INTERVAL = timedelta(hours=1)
    chain.sealing._next_enqueue = 0.0
    yield
    chain.sealing._next_enqueue = 0.0


def write(count: int, **context: Any) -> list[Event]:
    return [
        record_event(action="chain_test", app="tests", context={"n": index, **context})
        for index in range(count)
    ]


def by_sequence() -> list[EventChainLink]:
    return list(EventChainLink.objects.order_by("sequence"))


def at(sequence: int) -> EventChainLink:
    """The link at ``sequence`` (its event is ``event_at(sequence)``)."""
    return EventChainLink.objects.get(sequence=sequence)


def event_at(sequence: int) -> Event:
    return Event.objects.get(pk=at(sequence).event_uuid)


def sequence_of(event: Event) -> int:
    return EventChainLink.objects.get(event_uuid=event.pk).sequence


def raw(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
    """Run SQL the way someone with database access would, past the application."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def db_pk(item: Event | EventChainLink) -> Any:
    """An event's pk as the database stores it (of a link: its event's)."""
    pk = item.pk if isinstance(item, Event) else item.event_uuid
    return Event._meta.pk.get_db_prep_value(pk, connection)


def delete_events(*sequences: int) -> None:
    """Delete the events at ``sequences`` past the application (their links stay)."""
    for sequence in sequences:
        raw("DELETE FROM auditlog_event WHERE event_uuid = %s", [db_pk(at(sequence))])


def rehash_from(sequence: int) -> None:
    """What an attacker without the key can do: recompute every hash from ``sequence`` on so
    that content and links agree again."""
    prev = at(sequence).prev_hash if sequence > 1 else chain.GENESIS
    for link in EventChainLink.objects.filter(sequence__gte=sequence).order_by("sequence"):
        row = Event.objects.filter(pk=link.event_uuid).values(*chain.CANONICAL_FIELDS).get()
        digest = chain.link_hash(prev, chain.canonical_event(row, queued_at=link.queued_at))
        EventChainLink.objects.filter(pk=link.pk).update(prev_hash=prev, chain_hash=digest)
        prev = digest


def trigger_installed() -> bool:
    """Whether the events table has the trigger that queues inserted events."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = %s AND NOT tgisinternal",
                [TRIGGER],
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = %s "
                "AND tbl_name = 'auditlog_event'",
                [TRIGGER],
            )
        return cursor.fetchone()[0] == 1


def insert_raw(*events: Event) -> None:
    """One multi-row INSERT past the ORM, the way another program would write events."""
    columns = ", ".join(connection.ops.quote_name(name) for name in COLUMNS)
    values = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * len(events))
    params = [
        Event._meta.get_field(name).get_db_prep_save(getattr(event, name), connection)
        for event in events
        for name in COLUMNS
    ]
    raw(f"INSERT INTO auditlog_event ({columns}) VALUES {values}", params)  # noqa: S608


# Zones a time is stated in before it is canonicalised (UTC, ahead, behind by a half hour).
ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


def random_times(rnd: random.Random, count: int, *, last_year: int) -> list[datetime]:
    """``count`` aware times from year 1 to ``last_year``, each in one of :data:`ZONES`, with
    and without microseconds."""
    return [
        datetime(
            rnd.randint(1, last_year),
            rnd.randint(1, 12),
            rnd.randint(1, 28),
            rnd.randint(0, 23),
            rnd.randint(0, 59),
            rnd.randint(0, 59),
            rnd.choice([0, rnd.randint(0, 999_999)]),
            tzinfo=UTC,
        ).astimezone(rnd.choice(ZONES))
        for _ in range(count)
    ]
