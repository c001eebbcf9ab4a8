"""Sealing: the canonical form, the order, idempotence, bulk writes, failures, the after-commit
trigger and the signed checkpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auditlog import chain, tasks
from auditlog.bulk import write_events
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)
from project import celery_app
from tests.chain.conftest import TEST_KEY, at, by_sequence, db_pk, raw, write

pytestmark = pytest.mark.django_db

EVENT_FIELDS = {
    "pk",
    "user",
    "action",
    "app",
    "context",
    "client_ip",
    "created",
    "expires",
    "brand",
}


def test_the_canonical_form_is_sorted_compact_utf8_json_with_utc_microseconds() -> None:
    row = {
        "event_uuid": UUID("12345678-1234-5678-1234-567812345678"),
        "action": "login",
        "app": "auditlog.signals",
        "user": {"username": "zoë", "pk": 3},
        "context": {"b": [1, 2.5], "a": None},
        "client_ip": "81.2.69.142",
        "created": datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone.get_fixed_timezone(120)),
        "expires": datetime(2025, 5, 1, 12, 0, 0, 7, tzinfo=UTC),
        "expiring": True,
        "brand": {},
    }
    canonical = chain.canonical_event(row)
    assert (
        canonical
        == (
            '{"action":"login","app":"auditlog.signals","brand":{},"client_ip":"81.2.69.142",'
            '"context":{"a":null,"b":[1,2.5]},"created":"2024-05-01T12:00:00.000000Z",'
            '"expires":"2025-05-01T12:00:00.000007Z","expiring":true,'
            '"pk":"12345678123456781234567812345678","user":{"pk":3,"username":"zoë"}}'
        ).encode()
    )
    assert (
        chain.link_hash(chain.GENESIS, canonical)
        == hashlib.sha256(chain.GENESIS.encode() + canonical).hexdigest()
    )


def test_events_are_sealed_in_creation_order_each_linked_to_the_one_before() -> None:
    now = timezone.now()
    (first,) = write(1)
    # Committed later, but created earlier (a long transaction): the chain follows
    # (created, event_uuid).
    second, third = (
        Event(action="login", app="tests", context={"i": i}, created=now - timedelta(hours=1))
        for i in range(2)
    )
    write_events([second, third])
    tied = sorted([second.pk, third.pk])

    assert chain.seal_pending() == 3

    sealed = by_sequence()
    assert [link.event_uuid for link in sealed] == [*tied, first.pk]
    assert [link.sequence for link in sealed] == [1, 2, 3]
    assert sealed[0].prev_hash == chain.GENESIS
    for before, link in zip([None, *sealed], sealed, strict=False):
        if before is not None:
            assert link.prev_hash == before.chain_hash
        row = Event.objects.filter(pk=link.event_uuid).values(*chain.CANONICAL_FIELDS).get()
        canonical = chain.canonical_event(row, queued_at=link.queued_at)
        assert link.chain_hash == chain.link_hash(link.prev_hash, canonical)
    assert not EventChainPending.objects.exists()


def test_sealing_twice_changes_nothing() -> None:
    write(4)
    chain.seal_pending()
    fields = ("sequence", "event_uuid", "prev_hash", "chain_hash")
    links = list(EventChainLink.objects.order_by("sequence").values_list(*fields))
    records = list(ChainCheckpoint.objects.values_list("pk", "sequence", "signature"))

    assert chain.seal_pending() == 0

    assert list(EventChainLink.objects.order_by("sequence").values_list(*fields)) == links
    assert list(ChainCheckpoint.objects.values_list("pk", "sequence", "signature")) == records


def test_later_events_continue_the_chain_from_its_head() -> None:
    write(3)
    chain.seal_pending()
    head = at(3)
    write(2)
    assert chain.seal_pending() == 2
    assert at(4).prev_hash == head.chain_hash
    assert chain.chain_head() == chain.Link(5, at(5).chain_hash)
    assert chain.verify().ok


def test_small_batches_chain_the_same_way() -> None:
    write(7)
    assert chain.seal_pending(batch_size=2) == 7
    assert [link.sequence for link in by_sequence()] == list(range(1, 8))
    assert chain.verify().verified == 7


def test_bulk_written_events_are_sealed_by_the_same_path() -> None:
    now = timezone.now()
    events = [
        # Written up to half an hour late: they say they were imported (backdating check).
        Event(
            action="login",
            app="demo",
            context={"i": i, "imported": {"source": "tests"}},
            created=now - timedelta(minutes=i),
        )
        for i in range(30)
    ]
    assert write_events(events, batch_size=10) == 30  # COPY on PostgreSQL
    assert chain.unsealed_count() == 30

    assert chain.seal_pending() == 30

    assert chain.unsealed_count() == 0
    contexts = dict(Event.objects.values_list("pk", "context"))
    assert [contexts[link.event_uuid]["i"] for link in by_sequence()] == list(range(29, -1, -1))
    assert chain.verify().ok


def test_a_sealer_that_fails_leaves_nothing_half_written(monkeypatch: pytest.MonkeyPatch) -> None:
    write(5)
    real = chain.canonical_event
    calls = {"n": 0}

    def failing(row: Any, **kwargs: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker killed")
        return real(row, **kwargs)

    monkeypatch.setattr(chain.sealing, "canonical_event", failing)
    with pytest.raises(RuntimeError):
        chain.seal_pending()
    assert chain.unsealed_count() == 5
    assert not EventChainLink.objects.exists()
    monkeypatch.undo()

    assert chain.seal_pending() == 5
    assert chain.verify().ok


def test_a_queued_event_deleted_before_it_is_sealed_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, gone, last = write(3)
    raw("DELETE FROM auditlog_event WHERE event_uuid = %s", [db_pk(gone)])
    assert chain.unsealed_count() == 3  # its queue entry is still there

    with caplog.at_level("WARNING", logger="auditlog.chain"):
        assert chain.seal_pending() == 2

    assert f"Event {gone.pk} was deleted before it was sealed" in caplog.text
    assert [link.event_uuid for link in by_sequence()] == [first.pk, last.pk]
    assert not EventChainPending.objects.exists()
    result = chain.verify()
    assert result.ok, result.first_broken  # never chained: no gap
    assert (result.verified, result.unsealed, result.unchained) == (2, 0, 0)


def test_one_seal_is_queued_after_commit_for_a_burst_of_events(
    django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        write(20)
    # In-process tasks: the seal ran after the commit and sealed the whole burst.
    assert chain.unsealed_count() == 0
    assert chain.verify().verified == 20

    celery_app.conf.task_always_eager = False  # a worker's queued seal, not an in-place one
    queued: list[Any] = []
    monkeypatch.setattr(tasks.seal_events, "apply_async", lambda **options: queued.append(options))
    try:
        chain.sealing._next_enqueue = 0.0
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            write(5)
        with django_capture_on_commit_callbacks(execute=True):
            write(3)  # committed within the interval: the queued seal (not started yet) will do
    finally:
        celery_app.conf.task_always_eager = True
    [options] = queued
    assert 0 < options["kwargs"]["not_before"] - time.time() <= chain.sealing.SEAL_DEBOUNCE_SECONDS


def test_writing_an_event_does_no_chain_work(django_capture_on_commit_callbacks: Any) -> None:
    with (
        django_capture_on_commit_callbacks(execute=False),
        CaptureQueriesContext(connection) as queries,
    ):
        write(10)
    statements = [query["sql"] for query in queries.captured_queries]
    assert not any("advisory" in sql or "auditlog_chain" in sql for sql in statements)
    # Queued by the trigger inside each INSERT: no statement of the application's own.
    assert not any("auditlog_eventchain" in sql for sql in statements)
    assert not any(sql.lstrip().upper().startswith("UPDATE") for sql in statements)
    assert chain.unsealed_count() == 10


def test_a_broker_that_is_down_does_not_fail_the_write(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditlog.tasks import seal_events

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(seal_events, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        (event,) = write(1)
    assert Event.objects.filter(pk=event.pk).exists()


def test_the_first_seal_writes_a_signed_checkpoint_then_every_n_events_or_interval() -> None:
    start = timezone.now()
    write(3)
    chain.seal_pending(now=start)
    write(3)  # 6 - 3 < 5 events and within the hour: none
    chain.seal_pending(now=start + timedelta(minutes=5))
    write(2)  # 8 - 3 >= 5
    chain.seal_pending(now=start + timedelta(minutes=10))
    write(1)  # one event, but an hour later
    chain.seal_pending(now=start + timedelta(minutes=71))
    chain.seal_pending(now=start + timedelta(hours=5))  # nothing new: no checkpoint

    checkpoints = list(ChainCheckpoint.objects.order_by("sequence"))
    assert [c.sequence for c in checkpoints] == [3, 8, 9]
    for checkpoint in checkpoints:
        assert checkpoint.kind == ChainRecordKind.CHECKPOINT
        assert checkpoint.chain_hash == at(checkpoint.sequence).chain_hash
        record = chain.checkpoint_record(checkpoint)
        expected = hmac.new(
            TEST_KEY.encode(), chain.signed_payload(record), hashlib.sha256
        ).hexdigest()
        assert checkpoint.signature == expected
        assert checkpoint.key_id == chain.key_id()
        assert TEST_KEY not in json.dumps(record)


def test_without_a_configured_key_checkpoints_are_signed_with_one_derived_from_the_secret_key(
    settings: Any,
) -> None:
    settings.AUDIT_CHAIN_KEY = ""
    write(1)
    chain.seal_pending()
    checkpoint = ChainCheckpoint.objects.get()
    derived = hmac.new(
        settings.SECRET_KEY.encode(), b"auditlog.chain.checkpoint-key", hashlib.sha256
    ).digest()
    assert chain.chain_key() == derived
    assert chain.signature_valid(chain.checkpoint_record(checkpoint))
    settings.AUDIT_CHAIN_KEY = TEST_KEY
    assert not chain.signature_valid(chain.checkpoint_record(checkpoint))


def test_sealing_records_no_events_of_its_own() -> None:
    write(6)
    chain.seal_pending()
    assert Event.objects.count() == 6
    assert ChainCheckpoint.objects.exists()


def test_the_scheduler_seals_every_minute() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["seal-events"]
    assert entry["task"] == "auditlog.tasks.seal_events"
    assert entry["schedule"].minute == set(range(60))


def test_the_seal_task_seals_pending_events() -> None:
    from auditlog.tasks import seal_events

    write(4)
    assert seal_events.delay().get(disable_sync_subtasks=False) == 4
    assert chain.unsealed_count() == 0
    assert EventChainLink.objects.count() == 4


def test_the_event_api_json_carries_no_chain_fields(api_as: Any, admin_user: Any) -> None:
    (event,) = write(1)
    chain.seal_pending()
    client = api_as(admin_user)
    listed = client.get("/api/v3/events/events/").json()["results"]
    assert listed and all(set(item) == EVENT_FIELDS for item in listed)
    detail = client.get(f"/api/v3/events/events/{event.pk}/").json()
    assert set(detail) == EVENT_FIELDS
