"""``manage.py partition_events`` converts a plain events table (as installations before
partitioning have it) into the partitioned one without losing an event: interrupted after
some batches, written to and pruned meanwhile, resumed, every event is there once, the chain
verifies, and the plain table stays until ``--drop-old``. The chain's link table is converted
the same way, by the command and by the migration ``0014`` (small tables only)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from auditlog import chain, partitioning, partitions
from auditlog.bulk import write_events
from auditlog.chain import links as chain_links
from auditlog.chain import pruning
from auditlog.models import Event, EventChainLink, EventChainPending
from auditlog.services import record_event

pytestmark = pytest.mark.django_db


def _execute(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


def _make_plain() -> None:
    """The plain table of migrations 0001-0011 (what reversing 0012 makes): primary key
    ``event_uuid``, the same indexes, the statement queue trigger."""
    with connection.cursor() as cursor:
        partitioning.unpartition(cursor)


def _old(count: int, days: int) -> list[Event]:
    start = timezone.now() - timedelta(days=days)
    events = [
        Event(
            action="login",
            app="tests",
            context={"n": index, "imported": {"source": "tests"}},
            created=start + timedelta(hours=index),
            expires=timezone.now() + timedelta(days=30),
        )
        for index in range(count)
    ]
    write_events(events)
    return events


def _prune(event: Event) -> Event:
    """Delete ``event`` as retention does (with its link and a prune record)."""
    with transaction.atomic():
        chain_links.lock_chain()
        pruning.delete_with_links([event.pk])
    return event


def _resume_to_the_end() -> str:
    """Resume the conversion for one batch, then to its end: the last run's output."""
    call_command("partition_events", batch_size=10, max_batches=1, stdout=StringIO(), verbosity=0)
    out = StringIO()
    call_command("partition_events", batch_size=10, stdout=out, verbosity=0)
    return out.getvalue()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_an_interrupted_conversion_resumes_and_loses_no_event() -> None:
    _make_plain()
    with connection.cursor() as cursor:
        assert partitioning.state(cursor) == "plain"
    events = _old(30, days=70) + _old(25, days=5)
    chain.seal_pending()
    out = StringIO()
    call_command("partition_events", batch_size=10, max_batches=2, stdout=out, verbosity=0)
    assert "run the command again to resume" in out.getvalue()
    with connection.cursor() as cursor:
        assert partitioning.state(cursor) == "copying"
        assert partitioning.progress(cursor)[0] == 20
    # Meanwhile: new events (one older than the copy's position), and a copied one pruned.
    written_meanwhile = [record_event(action="login", app="tests") for _ in range(3)]
    written_meanwhile += _old(1, days=80)
    pruned = _prune(events[0])
    output = _resume_to_the_end()
    assert "partitioned" in output
    with connection.cursor() as cursor:
        assert partitioning.state(cursor) == "partitioned"
        months = {p.name for p in partitions.partitions(cursor)}
    assert partitions.partition_name(partitions.month_of(events[0].created)) in months
    assert partitions.DEFAULT in months
    expected = {e.pk for e in events[1:] + written_meanwhile}
    everything = set(Event.objects.values_list("pk", flat=True))
    assert expected <= everything and pruned.pk not in everything
    assert len(everything) == Event.objects.count()
    # The queue trigger moved: a new event is queued; everything seals and verifies.
    fresh = record_event(action="logout", app="tests")
    assert EventChainPending.objects.filter(event_uuid=fresh.pk).exists()
    chain.seal_pending()
    assert chain.verify().ok
    # The plain table stays until it is dropped.
    kept = _execute("SELECT count(*) FROM auditlog_event_unpartitioned")[0][0]
    assert kept >= len(expected)
    out = StringIO()
    call_command("partition_events", drop_old=True, stdout=out)
    assert _execute(f"SELECT to_regclass('{partitioning.OLD}')") == [(None,)]
    out = StringIO()
    call_command("partition_events", stdout=out)
    assert "partitioned already" in out.getvalue()


def test_bad_options_are_refused() -> None:
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("partition_events")
        return
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("partition_events", batch_size=0)
    with pytest.raises(CommandError, match="--max-batches"):
        call_command("partition_events", max_batches=0)


def _links_state() -> str:
    with connection.cursor() as cursor:
        return partitioning.state(cursor, partitioning.LINKS)


def _make_links_plain() -> None:
    """The plain link table of migrations 0004-0013 with 0014's column (what reversing
    0014's conversion makes)."""
    with connection.cursor() as cursor:
        partitioning.unpartition(cursor, partitioning.LINKS)


def _linked() -> set[Any]:
    return set(EventChainLink.objects.values_list("event_uuid", flat=True))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_an_interrupted_conversion_of_the_link_table_resumes_and_loses_no_link() -> None:
    events = _old(30, days=70) + _old(25, days=5)
    chain.seal_pending()
    _make_links_plain()
    assert _links_state() == "plain"
    out = StringIO()
    call_command("partition_events", batch_size=10, max_batches=2, stdout=out, verbosity=0)
    assert "auditlog_eventchainlink; run the command again to resume" in out.getvalue()
    with connection.cursor() as cursor:
        assert partitioning.progress(cursor, partitioning.LINKS)[0] == 20
    assert _links_state() == "copying"
    # Meanwhile: events sealed (links written to the plain table), a copied one pruned.
    written_meanwhile = [record_event(action="login", app="tests") for _ in range(3)]
    chain.seal_pending()
    _prune(events[0])
    output = _resume_to_the_end()
    assert "auditlog_eventchainlink is partitioned" in output
    assert _links_state() == "partitioned"
    with connection.cursor() as cursor:
        months = {p.name for p in partitions.partitions(cursor, partitions.LINKS)}
    oldest = partitions.month_of(events[0].created)
    assert partitions.partition_name(oldest, partitions.LINK_TABLE) in months
    assert partitions.LINKS_DEFAULT in months
    assert _linked() == {e.pk for e in events[1:] + written_meanwhile}
    assert EventChainLink.objects.count() == len(events) - 1 + len(written_meanwhile)
    record_event(action="logout", app="tests")
    assert chain.seal_pending() == 1
    assert chain.verify().ok
    out = StringIO()
    call_command("partition_events", drop_old=True, stdout=out)
    assert f"Dropped {partitioning.LINKS.old}." in out.getvalue()
    assert _execute(f"SELECT to_regclass('{partitioning.LINKS.old}')") == [(None,)]


def _migration() -> Any:
    return importlib.import_module("auditlog.migrations.0014_partition_chain_links")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_the_migration_converts_a_small_link_table_and_leaves_a_large_one_to_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _old(6, days=40)
    chain.seal_pending()
    _make_links_plain()
    migration = _migration()
    monkeypatch.setattr(migration, "CONVERT_IN_MIGRATION_UP_TO", 5)
    with connection.schema_editor() as editor:
        migration.partition(None, editor)
    assert "run `manage.py partition_events` to partition it" in capsys.readouterr().out
    assert _links_state() == "plain"
    # Interrupted (by the command, say): the migration leaves it to the command to finish.
    partitioning.convert(batch_size=2, max_batches=1, conversion=partitioning.LINKS)
    with connection.schema_editor() as editor:
        migration.partition(None, editor)
    assert "partition_events` to finish" in capsys.readouterr().out
    assert _links_state() == "copying"
    assert partitioning.convert(batch_size=2, conversion=partitioning.LINKS)
    _make_links_plain()
    _execute(f"DROP TABLE {partitioning.LINKS.old}")
    # Small enough: converted in the migration, the plain table dropped.
    monkeypatch.setattr(migration, "CONVERT_IN_MIGRATION_UP_TO", 6)
    with connection.schema_editor() as editor:
        migration.partition(None, editor)
    assert _links_state() == "partitioned"
    assert _execute(f"SELECT to_regclass('{partitioning.LINKS.old}')") == [(None,)]
    assert _linked() == {e.pk for e in events}
    assert chain.verify().ok
    # And back.
    with connection.schema_editor() as editor:
        migration.unpartition(None, editor)
    assert _links_state() == "plain"
    assert _linked() == {e.pk for e in events}
    assert chain.verify().ok


def test_the_migration_fills_each_links_event_created_from_its_event() -> None:
    events = _old(3, days=40)
    chain.seal_pending()
    if connection.vendor == "postgresql":
        _make_links_plain()
    EventChainLink.objects.update(event_created=timezone.now())
    # SQLite's schema editor refuses to open inside a test's transaction; the function
    # only asks it for the connection.
    _migration().fill_event_created(None, SimpleNamespace(connection=connection))
    assert dict(EventChainLink.objects.values_list("event_uuid", "event_created")) == {
        e.pk: e.created for e in events
    }
