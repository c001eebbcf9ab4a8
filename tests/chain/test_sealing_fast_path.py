"""The sealer's fast path (issue 14, sealing keeps up with batch ingest): on PostgreSQL it takes
a batch off the queue in one statement, with the times as text rendered by the database and the
JSON decoded from its text, and it pauses Python's cyclic garbage collector for each batch;
every link must hash exactly what verification recomputes from the rows the ORM reads,
whatever the values."""

from __future__ import annotations

import gc
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection

from auditlog import chain
from auditlog.bulk import write_events
from auditlog.chain.canonical import utc_text
from auditlog.chain.links import insert_links
from auditlog.models import Event, EventChainLink, EventChainPending
from tests.chain.conftest import by_sequence, db_pk, random_times, raw, write

pytestmark = pytest.mark.django_db

IMPORTED = {"imported": {"source": "tests"}}  # old times on purpose: not backdating
PLUS_TWO = timezone(timedelta(hours=2))


def edge_events() -> list[Event]:
    late = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    return [
        Event(
            action="login",
            app="tests",
            user={"username": "zoë", "pk": 2**70},
            context={
                **IMPORTED,
                "floats": [1e-05, 0.0001, 1e16, 2.5, -0.0, 52.52],
                "huge": 2**70,  # beyond 64 bits: orjson refuses it, the ORM's fallback reads it
                "text": 'zoë \u2028 "quoted" \\ \n\t \x01 😀',
                "nested": {"b": [1, None, True, {}], "a": []},
            },
            client_ip="2001:db8::8a2e:370:7334",
            created=datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            expires=late,
        ),
        # The year 1000 where it was written, 999 in UTC.
        Event(
            action="logout",
            app="tests",
            context=IMPORTED,
            client_ip="81.2.69.142",
            created=datetime(1000, 1, 1, 1, 0, tzinfo=PLUS_TWO),
            expires=datetime(1000, 1, 2, tzinfo=UTC),
            expiring=False,
        ),
        Event(
            action="model_created",
            app="tests",
            user={},
            context={},
            client_ip=None,
            created=datetime.now(PLUS_TWO).replace(microsecond=0),
            brand={},
        ),
    ]


def test_events_with_edge_values_are_sealed_as_verification_recomputes_them() -> None:
    events = edge_events()
    write_events(events)

    assert chain.seal_pending() == len(events)

    links = by_sequence()
    in_order = sorted(events, key=lambda event: event.created)  # the year 1000 at +02:00 first
    assert [link.event_uuid for link in links] == [event.pk for event in in_order]
    prev = chain.GENESIS
    for link in links:
        row = Event.objects.filter(pk=link.event_uuid).values(*chain.CANONICAL_FIELDS).get()
        canonical = chain.canonical_event(row, queued_at=link.queued_at)
        assert link.prev_hash == prev
        assert link.chain_hash == chain.link_hash(prev, canonical)
        prev = link.chain_hash
    assert b'"created":"999-12-31T23:59:59.999999Z"' in chain.canonical_event(
        Event.objects.filter(pk=events[0].pk).values(*chain.CANONICAL_FIELDS).get()
    )
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.backdated) == (3, 0)


def test_a_batch_takes_its_entries_off_the_queue_and_leaves_the_rest() -> None:
    now = datetime.now(UTC)
    events = [
        Event(action="login", app="tests", context={"i": i}, created=now - timedelta(seconds=i))
        for i in range(7)
    ]
    write_events(events)

    assert chain.seal_pending(batch_size=3) == 7

    # Oldest first across the batch boundaries (3, 3, 1), each entry taken once.
    assert [link.event_uuid for link in by_sequence()] == [event.pk for event in events[::-1]]
    assert not EventChainPending.objects.exists()


def test_an_event_whose_created_changed_while_it_waited_is_sealed_as_it_now_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, moved, last = write(3)
    # Past the application, as someone with database access could: on PostgreSQL the row may
    # move to another month's partition; its queue entry keeps the time it was queued with.
    later = moved.created + timedelta(days=40)
    raw("UPDATE auditlog_event SET created = %s WHERE event_uuid = %s", [later, db_pk(moved)])
    assert EventChainPending.objects.get(pk=moved.pk).created == moved.created

    with caplog.at_level("WARNING", logger="auditlog.chain"):
        assert chain.seal_pending() == 3

    assert "deleted before it was sealed" not in caplog.text
    assert [link.event_uuid for link in by_sequence()] == [first.pk, moved.pk, last.pk]
    result = chain.verify()
    assert result.ok, result.first_broken
    assert result.verified == 3


def test_the_database_renders_times_as_the_canonical_text() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the sealer reads times as text on PostgreSQL only")
    values = random_times(random.Random(14), 2_000, last_year=9999)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
            "FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS v(t, n) ORDER BY n",
            [values],
        )
        texts = [text for (text,) in cursor.fetchall()]
    for value, text in zip(values, texts, strict=True):
        assert utc_text(text) == chain.iso_utc(value), (value, text)


def test_the_canonical_json_is_the_standard_librarys_where_faster_encoders_differ() -> None:
    # Stored hashes are of json.dumps' bytes; orjson, for one, writes 1e-05 as 0.00001, 1.5e-07
    # as 1.5e-7 and NaN as null, and refuses integers beyond 64 bits.
    documents = [
        {"floats": [1e-05, 1.5e-07, 0.0001, 1e16, 1e22, 5e-324, -0.0, 2.5], "n": float("nan")},
        {"huge": 2**70, "text": 'zoë \u2028 "q" \\ \n \x01 😀', "z": {}, "a": [None, True]},
    ]
    for document in documents:
        expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert chain.canonical_json(document) == expected.encode()


def test_times_given_as_text_are_read_with_their_offset_and_never_guessed() -> None:
    assert utc_text("2024-05-01T12:00:00.000007Z") == "2024-05-01T12:00:00.000007Z"
    assert utc_text("2024-05-01T14:00:00+02:00") == "2024-05-01T12:00:00.000000Z"
    assert utc_text("0999-05-01T12:00:00.500000Z") == chain.iso_utc(
        datetime(999, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match="without its offset"):
        utc_text("2024-05-01T12:00:00")


def test_links_are_never_written_from_values_an_array_literal_would_misread() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the links are written as array literals on PostgreSQL only")
    for bad in ("a b", "a,b", 'a"b', "a{b}", "a\\b"):
        with pytest.raises(ValueError, match="needs quoting"):
            insert_links([(1, uuid4(), chain.GENESIS, bad, None, "2024-05-01T12:00:00Z")])
    assert not EventChainLink.objects.exists()


def test_the_garbage_collector_is_paused_for_a_batch_and_restored_even_when_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(3)
    real = chain.canonical_event
    seen: list[bool] = []

    def watching(row: Any, **kwargs: Any) -> bytes:
        seen.append(gc.isenabled())
        if len(seen) == 2:
            raise RuntimeError("worker killed")
        return real(row, **kwargs)

    monkeypatch.setattr(chain.sealing, "canonical_event", watching)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        chain.seal_pending()
    assert seen == [False, False]
    assert gc.isenabled()

    monkeypatch.undo()
    gc.disable()  # paused by someone else: left paused
    try:
        assert chain.seal_pending() == 3
        assert not gc.isenabled()
    finally:
        gc.enable()
