"""The events table is insert-only: a trigger queues every inserted event, however it was
written, and sealing only reads events. Events that escape the queue are reported."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auditlog import chain
from auditlog.bulk import write_events
from auditlog.capture import is_audited
from auditlog.chain import Breach
from auditlog.models import ChainCheckpoint, Event, EventChainLink, EventChainPending
from tests.chain.conftest import (
    TRIGGER,
    at,
    by_sequence,
    db_pk,
    delete_events,
    insert_raw,
    raw,
    trigger_installed,
    write,
)

pytestmark = pytest.mark.django_db


def unsaved(count: int, **fields: Any) -> list[Event]:
    now = timezone.now()
    return [
        Event(
            event_uuid=uuid4(),
            action="login",
            app="tests",
            context={"i": index},
            created=now - timedelta(seconds=index),
            expires=now + timedelta(days=1),
            **fields,
        )
        for index in range(count)
    ]


def queued() -> dict[Any, Any]:
    return dict(EventChainPending.objects.values_list("event_uuid", "created"))


@contextmanager
def trigger_disabled() -> Iterator[None]:
    """Insert past the queue, as someone with database access could (rolled back with the
    test's transaction, and restored here in any case)."""
    if connection.vendor == "postgresql":
        raw(f"ALTER TABLE auditlog_event DISABLE TRIGGER {TRIGGER}")
        try:
            yield
        finally:
            raw(f"ALTER TABLE auditlog_event ENABLE TRIGGER {TRIGGER}")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s", [TRIGGER]
        )
        (definition,) = cursor.fetchone()
    raw(f"DROP TRIGGER {TRIGGER}")
    try:
        yield
    finally:
        raw(definition)


def test_the_test_database_has_the_queue_trigger() -> None:
    assert trigger_installed()


def test_events_written_in_bulk_are_queued_by_the_database_alone() -> None:
    events = unsaved(25)
    with CaptureQueriesContext(connection) as queries:
        assert write_events(events, batch_size=10) == 25  # COPY on PostgreSQL
    assert not any("auditlog_eventchain" in query["sql"] for query in queries.captured_queries)

    assert queued() == {event.pk: event.created for event in events}
    assert chain.seal_pending() == 25
    assert not EventChainPending.objects.exists()
    # Oldest first: the events were created one second apart, the first one last.
    assert [link.event_uuid for link in by_sequence()] == [event.pk for event in events[::-1]]
    result = chain.verify()
    assert result.ok, result.first_broken
    assert result.verified == 25


def test_events_inserted_with_raw_sql_are_queued_and_chained() -> None:
    events = unsaved(3, client_ip="2001:db8::1")
    insert_raw(*events)  # one statement, three rows

    assert queued() == {event.pk: event.created for event in events}
    assert chain.seal_pending() == 3
    assert {link.event_uuid for link in by_sequence()} == {event.pk for event in events}
    assert chain.verify().ok


def test_an_event_taken_out_of_the_queue_fails_verification_naming_it() -> None:
    write(3)
    chain.seal_pending()
    (bypassed,) = write(1)
    raw("DELETE FROM auditlog_eventchainpending WHERE event_uuid = %s", [db_pk(bypassed)])

    result = chain.verify()
    assert not result.ok
    assert (result.verified, result.unsealed, result.unchained) == (3, 0, 1)
    broken = result.first_broken
    assert broken is not None
    assert (broken.sequence, broken.event_pk, broken.reason) == (
        None,
        str(bypassed.pk),
        Breach.NOT_CHAINED,
    )
    assert broken.message == (
        f"Event chain broken at event {bypassed.pk}: events not chained: it is neither chained "
        "nor waiting to be sealed (inserted with the queue trigger disabled, or taken out of the "
        "queue)."
    )
    assert chain.seal_pending() == 0  # nothing the sealer could pick up and whitewash
    assert not chain.verify().ok


def test_events_inserted_with_the_trigger_disabled_fail_verification_naming_the_oldest() -> None:
    write(2)
    chain.seal_pending()
    events = unsaved(3)
    with trigger_disabled():
        insert_raw(*events)
    assert trigger_installed()
    assert not EventChainPending.objects.exists()

    result = chain.verify()
    assert result.unchained == 3
    broken = result.first_broken
    assert broken is not None
    assert (broken.event_pk, broken.reason) == (str(events[-1].pk), Breach.NOT_CHAINED)
    assert "it and 2 more events are neither chained nor waiting to be sealed" in broken.message


def test_an_event_deleted_past_the_application_is_reported_missing() -> None:
    write(4)
    chain.seal_pending()
    gone = at(2)
    delete_events(2)
    assert EventChainLink.objects.filter(event_uuid=gone.event_uuid).exists()  # no cascade

    result = chain.verify()
    broken = result.first_broken
    assert broken is not None
    assert (broken.sequence, broken.event_pk, broken.reason) == (
        2,
        str(gone.event_uuid),
        Breach.EVENTS_MISSING,
    )
    assert result.unchained == 0


def test_an_event_deleted_and_inserted_again_does_not_stop_the_sealer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (event,) = write(1)
    write(1)
    chain.seal_pending()
    row = Event.objects.get(pk=event.pk)
    delete_events(1)
    insert_raw(row)  # queued again under a chained pk

    with caplog.at_level("WARNING", logger="auditlog.chain"):
        assert chain.seal_pending() == 0
    assert f"Event {event.pk} is chained already" in caplog.text
    assert not EventChainPending.objects.exists()
    (later,) = write(1)
    assert chain.seal_pending() == 1
    assert at(3).event_uuid == later.pk
    assert chain.verify().ok  # the same content again: nothing was lost


_WRITES_TO_EVENTS = re.compile(
    r'^\s*(UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+"?auditlog_event"?(\s|\(|$)', re.IGNORECASE
)


def _events_table_writes() -> tuple[int, int] | None:
    """PostgreSQL's own count of rows updated and deleted in the events table by this
    backend (triggers included); only differences within one transaction mean anything."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname = 'auditlog_event'"
        )
        upd, deleted = cursor.fetchone()
        return int(upd), int(deleted)


def test_sealing_never_writes_to_the_events_table() -> None:
    write(12)
    before = _events_table_writes()
    with CaptureQueriesContext(connection) as queries:
        assert chain.seal_pending(batch_size=5) == 12
    assert _events_table_writes() == before
    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if _WRITES_TO_EVENTS.match(sql)]
    assert any(re.match(r'\s*INSERT INTO "auditlog_eventchainlink"', sql) for sql in statements)
    assert EventChainLink.objects.count() == 12


def test_without_the_trigger_the_sealer_finds_unlinked_events_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = write(3)
    EventChainPending.objects.all().delete()
    for module in (chain.links, chain.sealing, chain.verification):
        monkeypatch.setattr(module, "queued_by_trigger", lambda: False)
    assert chain.unsealed_count() == 3

    assert chain.seal_pending() == 3

    assert [link.event_uuid for link in by_sequence()] == sorted(
        (event.pk for event in events), key=lambda pk: (Event.objects.get(pk=pk).created, pk)
    )
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.unsealed, result.unchained) == (3, 0, 0)


def test_chain_bookkeeping_is_not_captured_as_model_events() -> None:
    assert not any(is_audited(model) for model in (EventChainLink, EventChainPending))
    assert not is_audited(ChainCheckpoint)
    write(6)
    before = Event.objects.count()
    chain.seal_pending()
    assert Event.objects.count() == before
