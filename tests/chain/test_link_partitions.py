"""The chain's links carry their event's ``created`` and, on PostgreSQL, live in the month
partition of it (like the events): the database's keys hold the month, the sealer keeps
``sequence`` and ``event_uuid`` unique across months, and reading links in chain order walks
each month's index (a Merge Append), never sorts them. SQLite keeps the plain table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from auditlog import chain, partitions
from auditlog.bulk import write_events
from auditlog.models import Event, EventChainLink
from tests.chain.conftest import by_sequence, delete_events, insert_raw

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)


def _fetch(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _months_back(*months: int) -> list[Event]:
    """One imported event in each of the months ``months`` before this one."""
    this_month = partitions.month_of(timezone.now())
    partitions.ensure_partitions(since=partitions.add_months(this_month, -max(months)))
    events = [
        Event(
            action="login",
            app="tests",
            context={"n": back, "imported": {"source": "tests"}},
            created=partitions.add_months(this_month, -back) + timedelta(days=2),
            expires=timezone.now() + timedelta(days=30),
        )
        for back in months
    ]
    write_events(events)
    return events


def test_a_link_keeps_its_events_created() -> None:
    events = _months_back(3, 1, 0)
    chain.seal_pending()
    created = {event.pk: event.created for event in events}
    assert {link.event_uuid: link.event_created for link in by_sequence()} == created


@postgresql_only
def test_links_live_in_the_month_partition_of_their_events_created() -> None:
    keys = _fetch(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'auditlog_eventchainlink'::regclass ORDER BY contype"
    )
    assert keys == [
        ("PRIMARY KEY (sequence, event_created)",),
        ("UNIQUE (event_uuid, event_created)",),
    ]
    events = _months_back(2, 0)
    chain.seal_pending()
    places = dict(
        _fetch("SELECT event_uuid, tableoid::regclass::text FROM auditlog_eventchainlink")
    )
    assert places == {
        event.pk: partitions.partition_name(
            partitions.month_of(event.created), partitions.LINK_TABLE
        )
        for event in events
    }


@postgresql_only
def test_the_scheduler_makes_link_partitions_ahead_and_moves_links_out_of_the_default() -> None:
    far = partitions.add_months(partitions.month_of(timezone.now()), 5)
    event = Event(
        action="login",
        app="tests",
        context={"imported": {"source": "tests"}},
        created=far + timedelta(days=1),
        expires=far + timedelta(days=60),
    )
    write_events([event])
    chain.seal_pending()
    assert _fetch("SELECT tableoid::regclass::text FROM auditlog_eventchainlink") == [
        (partitions.LINKS_DEFAULT,)
    ]
    created = partitions.ensure_partitions(months_ahead=6)
    assert partitions.partition_name(far, partitions.LINK_TABLE) in created
    assert _fetch("SELECT tableoid::regclass::text FROM auditlog_eventchainlink") == [
        (partitions.partition_name(far, partitions.LINK_TABLE),)
    ]
    assert EventChainLink.objects.get().event_uuid == event.pk
    assert chain.verify().ok


def test_an_event_inserted_again_in_another_month_is_not_linked_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database's key holds the month, so only the sealer keeps an event from being
    linked again in another month's partition."""
    (event,) = _months_back(2)
    chain.seal_pending()
    row = Event.objects.get(pk=event.pk)
    delete_events(1)
    row.created = timezone.now() - timedelta(minutes=1)  # this month: another partition
    insert_raw(row)
    with caplog.at_level("WARNING", logger="auditlog.chain"):
        assert chain.seal_pending() == 0
    assert f"Event {event.pk} is chained already" in caplog.text
    assert EventChainLink.objects.filter(event_uuid=event.pk).count() == 1


@postgresql_only
def test_links_in_chain_order_are_read_through_each_months_index_not_sorted() -> None:
    """As the planner sees a chain of some size: 30,000 links over three months (written
    straight into the table; plans do not need their events)."""
    start = partitions.add_months(partitions.month_of(timezone.now()), -2)
    partitions.ensure_partitions(since=start)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auditlog_eventchainlink"
            " (sequence, event_uuid, prev_hash, chain_hash, queued_at, event_created)"
            " SELECT g, gen_random_uuid(), md5(g::text), md5(g::text), NULL,"
            " %s + g * interval '4 minutes' FROM generate_series(1, 30000) AS g",
            [start],
        )
        cursor.execute("ANALYZE auditlog_eventchainlink")
    queries = [
        EventChainLink.objects.filter(sequence__gte=1).order_by("sequence"),  # verification
        EventChainLink.objects.filter(sequence__gt=2).order_by("sequence")[:100],  # after=
        EventChainLink.objects.order_by("-sequence")[:1],  # the chain's head
    ]
    for query in queries:
        plan = query.explain()
        assert "Merge Append" in plan, plan
        assert "Sort  " not in plan and "Sort (" not in plan, plan
        assert "Seq Scan on auditlog_eventchainlink_p" not in plan, plan
