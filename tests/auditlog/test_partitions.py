"""The events table partitioned by month on PostgreSQL: what a fresh migrate makes, partitions
made ahead, rows written straight into a partition are queued, retention drops a month whose
events have all expired with its links' partition (disk returned, the chain verifies with a
prune record per removed run, the roll-ups still agree), and batches of retention delete only
their own rows (a physical address is a partition's)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from auditlog import chain, partitioning, partitions, rollups
from auditlog.bulk import write_events
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)
from auditlog.retention import delete_expired_events, drop_expired_partitions
from auditlog.tasks import make_event_partitions
from directory.models import User
from notifications.models import Notification

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)
BERLIN = {"lat": 52.52, "long": 13.405, "country": "DE"}


def _fetch(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _names() -> list[str]:
    with connection.cursor() as cursor:
        return [p.name for p in partitions.partitions(cursor)]


def _disk() -> int:
    return int(
        _fetch(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
            " FROM pg_partition_tree('auditlog_event')"
        )[0][0]
    )


def _events(month_start: Any, count: int, *, expired: bool, **fields: Any) -> list[Event]:
    """``count`` events of the month starting at ``month_start`` (imported, so the chain's
    backdating check allows their age), expired or not."""
    now = timezone.now()
    events = [
        Event(
            action="login",
            app="tests",
            context={"n": index, "imported": {"source": "tests"}, "geo": BERLIN},
            created=month_start + timedelta(hours=index + 1),
            expires=now - timedelta(minutes=1) if expired else now + timedelta(days=30),
            **fields,
        )
        for index in range(count)
    ]
    write_events(events)
    return events


def _rollups_agree() -> bool:
    since = timezone.now() - timedelta(days=400)
    counted, events = rollups.counted({}), Event.objects.all()
    by_rollups = rollups.volume(since=since, rollups=rollups.counted_volume({}), events=events)
    places = rollups.places(rollups=counted, events=events)
    located = sum(p["count"] for p in places)
    located_events = events.filter(context__geo__has_key="lat").count()
    return sum(b["count"] for b in by_rollups) == events.count() and located == located_events


@postgresql_only
def test_a_fresh_migrate_makes_the_partitioned_table_with_months_ahead_and_a_default() -> None:
    assert _fetch("SELECT relkind FROM pg_class WHERE relname = 'auditlog_event'") == [("p",)]
    key = _fetch(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'auditlog_event'::regclass AND contype = 'p'"
    )
    assert key == [("PRIMARY KEY (event_uuid, created)",)]
    month = partitions.month_of(timezone.now())
    months = [partitions.add_months(month, n) for n in range(3)]
    expected = [partitions.partition_name(m) for m in months]
    names = _names()
    assert set(expected) <= set(names)
    assert names[-1] == partitions.DEFAULT
    # The indexes are partitioned indexes; nothing refers to the table by a foreign key.
    kinds = _fetch(
        "SELECT DISTINCT c.relkind FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 'auditlog_event'::regclass"
    )
    assert kinds == [("I",)]
    assert _fetch("SELECT 1 FROM pg_constraint WHERE confrelid = 'auditlog_event'::regclass") == []
    # The chain's links: the same months, partitioned by their event's created.
    assert _fetch("SELECT relkind FROM pg_class WHERE relname = 'auditlog_eventchainlink'") == [
        ("p",)
    ]
    link_names = _link_names()
    assert {partitions.partition_name(m, partitions.LINK_TABLE) for m in months} <= set(link_names)
    assert link_names[-1] == partitions.LINKS_DEFAULT


@postgresql_only
def test_the_scheduler_makes_partitions_ahead_and_moves_rows_from_the_default_one() -> None:
    assert "make-event-partitions" in settings.CELERY_BEAT_SCHEDULE
    far = partitions.add_months(partitions.month_of(timezone.now()), 5)
    (event,) = _events(far, 1, expired=False)
    assert _fetch("SELECT tableoid::regclass::text FROM auditlog_event") == [(partitions.DEFAULT,)]
    assert make_event_partitions() == []  # this month and the next two exist already
    created = partitions.ensure_partitions(months_ahead=6)
    assert partitions.partition_name(far) in created
    assert _fetch("SELECT tableoid::regclass::text FROM auditlog_event") == [
        (partitions.partition_name(far),)
    ]
    assert Event.objects.get(pk=event.pk).context["n"] == 0


IN_DEFAULTS = (
    f"SELECT count(*) FROM {partitions.DEFAULT}"  # noqa: S608 - the module's own names
    f" UNION ALL SELECT count(*) FROM {partitions.LINKS_DEFAULT}"
)


@postgresql_only
def test_the_scheduler_gives_past_months_in_the_default_partition_their_own() -> None:
    """Events imported for months without a partition wait in the default one; the scheduled
    task makes those months' partitions (only those that have rows) and moves the events and
    their links there, so retention can drop them with their month."""
    now = partitions.month_of(timezone.now())
    old, older, empty = (partitions.add_months(now, n) for n in (-4, -9, -6))
    imported = _events(old, 3, expired=False) + _events(older, 2, expired=False)
    chain.seal_pending()
    in_default = _fetch(IN_DEFAULTS)
    assert in_default == [(5,), (5,)]
    created = make_event_partitions()
    for month in (old, older):
        assert partitions.partition_name(month) in created
        assert partitions.partition_name(month, partitions.LINK_TABLE) in created
    assert partitions.partition_name(empty) not in _names()
    assert _fetch(IN_DEFAULTS) == [(0,), (0,)]
    where = _fetch(
        "SELECT tableoid::regclass::text, count(*) FROM auditlog_event"
        " WHERE event_uuid = ANY(%s) GROUP BY 1 ORDER BY 1",
        [[e.pk for e in imported]],
    )
    assert where == sorted(
        [(partitions.partition_name(old), 3), (partitions.partition_name(older), 2)]
    )
    assert chain.verify().ok
    assert make_event_partitions() == []


@postgresql_only
def test_a_row_written_straight_into_a_partition_is_queued_and_the_chain_verifies() -> None:
    name = partitions.partition_name(partitions.month_of(timezone.now()))
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{name}" SELECT gen_random_uuid(), %s, %s, %s, %s, NULL, now(),'
            " %s, now() + interval '1 day', true RETURNING event_uuid",
            ['{"username": "x"}', "login", "tests", "{}", "{}"],
        )
        (direct,) = cursor.fetchone()
    assert EventChainPending.objects.filter(event_uuid=direct).exists()
    through_parent = _events(partitions.month_of(timezone.now()), 3, expired=False)
    assert EventChainPending.objects.count() == 4
    assert _fetch("SELECT current_setting(%s, true)", [partitions.FLAG]) == [("",)]
    chain.seal_pending()
    assert chain.verify().ok
    assert Event.objects.filter(pk__in=[direct, *(e.pk for e in through_parent)]).count() == 4
    # A row an UPDATE of created moves to another partition is not queued again.
    moved = Event.objects.filter(pk=through_parent[0].pk)
    assert moved.update(created=timezone.now() - timedelta(days=40)) == 1
    assert not EventChainPending.objects.exists()


@postgresql_only
def test_retention_drops_a_month_of_expired_events_and_the_chain_and_rollups_agree() -> None:
    now = timezone.now()
    past = partitions.add_months(partitions.month_of(now), -3)
    partitions.ensure_partitions(since=past)
    user = User.objects.create(username="reader")
    old = _events(past, 40, expired=True)
    Notification.objects.create(user=user, body="about an old event", event_id=old[0].pk)
    kept = _events(partitions.month_of(now), 5, expired=False)
    edge = _events(partitions.month_of(now), 3, expired=True)  # deleted by batch
    chain.seal_pending()
    assert _rollups_agree()
    gone = {e.pk for e in old + edge}
    remaining = set(Event.objects.values_list("pk", flat=True)) - gone
    assert {e.pk for e in kept} <= remaining
    before = _disk()
    deleted = delete_expired_events(now=now)
    assert deleted == 43
    assert partitions.partition_name(past) not in _names()
    assert _disk() < before
    assert set(Event.objects.values_list("pk", flat=True)) == remaining
    assert Notification.objects.get().event_id is None
    prunes = ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
    assert sum(prunes.values_list("count", flat=True)) == 43
    assert chain.verify().ok
    assert _rollups_agree()


@postgresql_only
def test_a_month_with_one_event_still_kept_stays_and_loses_only_its_expired_events() -> None:
    now = timezone.now()
    past = partitions.add_months(partitions.month_of(now), -2)
    partitions.ensure_partitions(since=past)
    _events(past, 4, expired=True)
    (stays,) = _events(past + timedelta(days=3), 1, expired=False)
    chain.seal_pending()
    assert drop_expired_partitions(now) == 0
    assert partitions.partition_name(past) in _names()
    assert delete_expired_events(now=now) == 4
    assert list(Event.objects.values_list("pk", flat=True)) == [stays.pk]
    assert chain.verify().ok


@postgresql_only
def test_a_retention_batch_deletes_its_rows_not_those_at_the_same_place_elsewhere() -> None:
    now = timezone.now()
    two_back = partitions.add_months(partitions.month_of(now), -2)
    one_back = partitions.add_months(two_back, 1)
    partitions.ensure_partitions(since=two_back)  # new, empty tables
    (survivor,) = _events(two_back, 1, expired=False)
    (expired,) = _events(one_back, 1, expired=True)
    (kept,) = _events(one_back + timedelta(days=1), 1, expired=False)  # the month stays
    places = dict(_fetch("SELECT event_uuid, ctid::text FROM auditlog_event"))
    assert places[survivor.pk] == places[expired.pk] == "(0,1)"
    chain.seal_pending()
    assert delete_expired_events(now=now) == 1
    assert set(Event.objects.filter(pk__in=[survivor.pk, expired.pk, kept.pk])) == {
        survivor,
        kept,
    }
    assert chain.verify().ok


def test_without_partitions_nothing_is_made_or_dropped(settings: Any) -> None:
    if connection.vendor == "postgresql":
        settings.AUDITLOG_PARTITION_EVENTS = False
        assert not partitions.enabled()
        return
    assert partitions.ensure_partitions() == []
    assert drop_expired_partitions(timezone.now()) == 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_scheduled_task_moves_rows_out_of_the_default_partition_outside_a_transaction() -> None:
    """As the beat task runs it: not inside a test's transaction (the move locks the default
    partition, which PostgreSQL allows only in a transaction)."""
    far = partitions.add_months(partitions.month_of(timezone.now()), 4)
    (event,) = _events(far, 1, expired=False)
    partitions.ensure_partitions(months_ahead=5)
    assert _fetch(
        "SELECT tableoid::regclass::text FROM auditlog_event WHERE event_uuid = %s", [event.pk]
    ) == [(partitions.partition_name(far),)]


def _link_names() -> list[str]:
    with connection.cursor() as cursor:
        return [p.name for p in partitions.partitions(cursor, partitions.LINKS)]


@postgresql_only
def test_a_dropped_month_takes_its_links_partition_and_prune_records_cover_each_run() -> None:
    """The month's links are not one stretch of the chain (a later month was sealed between
    them): one prune record per run, read from the links partition before it is dropped."""
    now = timezone.now()
    past = partitions.add_months(partitions.month_of(now), -3)
    later = partitions.add_months(past, 1)
    partitions.ensure_partitions(since=past)
    _events(past, 3, expired=True)
    chain.seal_pending()  # sequences 1-3
    _events(later, 2, expired=False)
    chain.seal_pending()  # 4-5
    _events(past + timedelta(days=5), 2, expired=True)
    chain.seal_pending()  # 6-7, the same month as 1-3
    links = partitions.partition_name(past, partitions.LINK_TABLE)
    assert links in _link_names()
    assert drop_expired_partitions(now) == 5
    assert links not in _link_names()
    assert partitions.partition_name(past) not in _names()
    prunes = ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).order_by("sequence")
    assert [(p.first_sequence, p.last_sequence, p.count) for p in prunes] == [(1, 3, 3), (6, 7, 2)]
    assert sorted(EventChainLink.objects.values_list("sequence", flat=True)) == [4, 5]
    assert chain.verify().ok
    assert _rollups_agree()


@postgresql_only
def test_a_month_is_dropped_as_before_while_the_link_table_is_not_partitioned_yet() -> None:
    now = timezone.now()
    past = partitions.add_months(partitions.month_of(now), -2)
    partitions.ensure_partitions(since=past)
    with connection.cursor() as cursor:
        partitioning.unpartition(cursor, partitioning.LINKS)
    _events(past, 4, expired=True)
    kept = _events(partitions.month_of(now), 2, expired=False)
    chain.seal_pending()
    assert drop_expired_partitions(now) == 4
    assert set(EventChainLink.objects.values_list("event_uuid", flat=True)) == {e.pk for e in kept}
    assert chain.verify().ok
    assert _rollups_agree()


def test_the_system_check_warns_when_postgresqls_autovacuum_is_off() -> None:
    """Without autovacuum a month's partition never gets statistics and every ingest batch's
    lookup of stored ids scans the month; ``manage.py check --database`` says so (and never on
    SQLite). The server's own setting decides: it cannot be changed for one session."""
    from django.core import checks

    found = [
        message
        for message in checks.run_checks(tags=[checks.Tags.database], databases=["default"])
        if message.id == "auditlog.W021"
    ]
    if connection.vendor != "postgresql":
        assert found == []
        return
    (setting,) = _fetch("SELECT current_setting('autovacuum')")[0]
    assert len(found) == (0 if setting == "on" else 1)
    if found:
        assert "autovacuum is off on 'default'" in found[0].msg
        assert "ANALYZE auditlog_event" in (found[0].hint or "")
