"""Retention in batches keeps the chain's account exact: the prune records of a batched
deletion are the ones the links it removed call for, on SQLite (the ORM's batch) and on
PostgreSQL (one statement per batch), and the chain verifies afterwards."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from auditlog import chain, retention
from auditlog.bulk import write_events
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)
from auditlog.retention import delete_expired_events
from directory.models import User
from notifications.models import Notification

pytestmark = pytest.mark.django_db

# Which of 60 events (in chain order) have expired: long runs, single events, runs of two,
# the very first and the very last link.
EXPIRED = {*range(7), 9, 11, *range(14, 21), 25, 26, 30, *range(40, 56), 59}
RecordContent = tuple[Any, ...]


def chain_of(count: int, expired: Iterable[int]) -> list[Event]:
    """``count`` sealed events, one second apart, the ``expired`` ones past their expiry
    (written two days late, so they say they were imported: the chain's backdating check)."""
    now = timezone.now()
    start = now - timedelta(days=2)
    gone = set(expired)
    events = [
        Event(
            action="login",
            app="tests",
            context={"n": index, "imported": {"source": "tests"}},
            created=start + timedelta(seconds=index),
            expires=start + timedelta(seconds=index) if index in gone else now + timedelta(days=1),
        )
        for index in range(count)
    ]
    write_events(events)
    chain.seal_pending()
    return events


def links() -> dict[Any, EventChainLink]:
    return {link.event_uuid: link for link in EventChainLink.objects.all()}


def expected_records(before: dict[Any, EventChainLink], batch_size: int) -> list[RecordContent]:
    """What the per-row approach records: the expired events oldest first, cut into batches;
    in each batch, one record per run of consecutive sequences among its links."""
    expired = Event.objects.expired().order_by("expires", "created", "event_uuid")
    keys = list(expired.values_list("pk", flat=True))
    records: list[RecordContent] = []
    for offset in range(0, len(keys), batch_size):
        batch = sorted(
            (before[key] for key in keys[offset : offset + batch_size] if key in before),
            key=lambda link: link.sequence,
        )
        runs: list[list[EventChainLink]] = []
        for link in batch:
            if runs and link.sequence == runs[-1][-1].sequence + 1:
                runs[-1].append(link)
            else:
                runs.append([link])
        records += [
            (
                ChainRecordKind.PRUNE.value,
                run[-1].sequence,
                run[-1].chain_hash,
                run[0].sequence,
                run[-1].sequence,
                run[0].prev_hash,
                run[-1].chain_hash,
                len(run),
                chain.key_id(),
            )
            for run in runs
        ]
    return records


def stored_records() -> list[RecordContent]:
    return list(
        ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
        .order_by("pk")
        .values_list(
            "kind",
            "sequence",
            "chain_hash",
            "first_sequence",
            "last_sequence",
            "first_prev",
            "last_hash",
            "count",
            "key_id",
        )
    )


def all_signed() -> bool:
    return all(
        chain.signature_valid(chain.checkpoint_record(record))
        for record in ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
    )


@pytest.mark.parametrize("batch_size", [1, 4, 7, 10_000])
def test_batched_deletion_records_exactly_the_runs_it_removed(batch_size: int) -> None:
    events = chain_of(60, EXPIRED)
    before = links()
    expected = expected_records(before, batch_size)
    batches: list[int] = []

    deleted = delete_expired_events(batch_size=batch_size, progress=batches.append)

    assert deleted == len(EXPIRED)
    assert sum(batches) == len(EXPIRED)
    assert batches == [min(batch_size, len(EXPIRED) - n) for n in range(0, deleted, batch_size)]
    assert stored_records() == expected
    assert all_signed()
    remaining = set(Event.objects.values_list("pk", flat=True))
    assert remaining == {e.pk for i, e in enumerate(events) if i not in EXPIRED}
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.pruned, result.head) == (60 - len(EXPIRED), len(EXPIRED), 60)


def test_a_batch_boundary_inside_a_run_leaves_two_adjacent_records_that_verify() -> None:
    chain_of(10, range(1, 9))
    assert delete_expired_events(batch_size=5) == 8
    ranges = list(
        ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
        .order_by("first_sequence")
        .values_list("first_sequence", "last_sequence", "count")
    )
    assert ranges == [(2, 6, 5), (7, 9, 3)]
    first, second = ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).order_by(
        "first_sequence"
    )
    assert second.first_prev == first.last_hash
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.pruned) == (2, 8)


def test_events_that_expire_at_the_same_moment_are_all_deleted_across_batches() -> None:
    now = timezone.now()
    moment = now - timedelta(hours=1)
    write_events(
        Event(action="login", app="tests", context={"n": index}, created=now, expires=moment)
        for index in range(10)
    )
    chain.seal_pending()
    batches: list[int] = []
    assert delete_expired_events(batch_size=3, progress=batches.append) == 10
    assert batches == [3, 3, 3, 1]
    assert not Event.objects.filter(expires=moment).exists()
    result = chain.verify()
    assert result.ok, result.first_broken
    assert result.pruned == 10


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's batch statement")
def test_the_one_statement_batch_stores_the_same_records_as_the_orm_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scattered = set(random.Random(7).sample(range(300), 170))
    chain_of(300, scattered)
    fixed = timezone.now()
    monkeypatch.setattr(chain.pruning.timezone, "now", lambda: fixed)

    def signed_records() -> list[tuple[Any, ...]]:
        return [
            (*content, signature)
            for content, signature in zip(
                stored_records(),
                ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE)
                .order_by("pk")
                .values_list("signature", flat=True),
                strict=True,
            )
        ]

    with transaction.atomic():
        with monkeypatch.context() as orm_only:
            orm_only.setattr(retention, "_delete_batch_sql", retention._delete_batch_orm)
            assert delete_expired_events(now=fixed, batch_size=16) == 170
        by_orm = signed_records()
        transaction.set_rollback(True)

    assert not ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).exists()
    assert delete_expired_events(now=fixed, batch_size=16) == 170
    assert signed_records() == by_orm
    assert len(by_orm) > 11  # scattered: many runs per batch
    assert chain.verify().ok


def test_notifications_survive_every_batch_with_their_event_cleared() -> None:
    events = chain_of(20, range(12))
    user = User.objects.create_user("ana")
    notified = [
        Notification.objects.create(user=user, body=f"n{index}", event=events[index])
        for index in (0, 3, 5, 11, 15)
    ]
    assert delete_expired_events(batch_size=4) == 12
    cleared = {
        n.body: n.event_id for n in Notification.objects.filter(pk__in=[n.pk for n in notified])
    }
    assert cleared == {"n0": None, "n3": None, "n5": None, "n11": None, "n15": events[15].pk}


def test_links_and_queue_entries_go_with_their_events_and_nothing_else_is_touched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = chain_of(12, range(6))
    now = timezone.now()
    past, future = now - timedelta(minutes=1), now + timedelta(days=1)
    never = Event(action="login", app="tests", created=now, expires=past, expiring=False)
    later = [
        Event(action="login", app="tests", created=now, expires=when)
        for when in (past, past, future)
    ]
    write_events([never, *later])  # queued, not sealed yet
    kept_links = {k: (v.sequence, v.chain_hash) for k, v in links().items()}

    with monkeypatch.context() as unsealed:
        unsealed.setattr(chain.sealing, "seal_pending", lambda **_: 0)
        assert delete_expired_events(batch_size=4) == 8

    gone = [*(e.pk for e in events[:6]), later[0].pk, later[1].pk]
    assert not Event.objects.filter(pk__in=gone).exists()
    assert not EventChainLink.objects.filter(event_uuid__in=gone).exists()
    assert not EventChainPending.objects.filter(event_uuid__in=gone).exists()
    assert set(EventChainPending.objects.values_list("pk", flat=True)) == {never.pk, later[2].pk}
    assert {k: (v.sequence, v.chain_hash) for k, v in links().items()} == {
        e.pk: kept_links[e.pk] for e in events[6:]
    }
    assert set(Event.objects.values_list("pk", flat=True)) == {
        *(e.pk for e in events[6:]),
        never.pk,
        later[2].pk,
    }
    chain.seal_pending()
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.pruned, result.unchained) == (8, 6, 0)


def test_a_batch_that_fails_half_way_is_undone_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    events = chain_of(10, range(8))
    user = User.objects.create_user("ana")
    notification = Notification.objects.create(user=user, body="hi", event=events[6])
    calls: list[int] = []
    sign = chain.prune_records

    def second_batch_fails(runs: Iterable[chain.PrunedRun], now: datetime) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return sign(runs, now)

    monkeypatch.setattr(chain.pruning, "prune_records", second_batch_fails)
    with pytest.raises(RuntimeError):
        delete_expired_events(batch_size=4)

    # The first batch is done whole, the second not at all.
    assert not Event.objects.filter(pk__in=[e.pk for e in events[:4]]).exists()
    assert Event.objects.filter(pk__in=[e.pk for e in events[4:]]).count() == 6
    assert set(links()) >= {e.pk for e in events[4:]}
    assert not set(links()) & {e.pk for e in events[:4]}
    assert list(
        ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).values_list(
            "first_sequence", "last_sequence"
        )
    ) == [(1, 4)]
    notification.refresh_from_db()
    assert notification.event_id == events[6].pk
    assert chain.verify().ok


def test_hashes_that_are_not_hex_are_recorded_as_they_are() -> None:
    chain_of(6, range(3))
    EventChainLink.objects.filter(sequence=1).update(prev_hash="not a hash")
    assert delete_expired_events() == 3
    prune = ChainCheckpoint.objects.get(kind=ChainRecordKind.PRUNE)
    assert (prune.first_sequence, prune.last_sequence, prune.first_prev) == (1, 3, "not a hash")
    assert chain.signature_valid(chain.checkpoint_record(prune))


def test_runs_are_rebuilt_from_their_ends() -> None:
    rng = random.Random(3)
    sequences = sorted(rng.sample(range(1, 400), 150))
    rows = [(s, f"p{s}", f"h{s}") for s in sequences]
    present = set(sequences)
    ends = [
        (s, p, h, s - 1 not in present, s + 1 not in present)
        for s, p, h in rows
        if s - 1 not in present or s + 1 not in present
    ]
    expected = [
        chain.PrunedRun(run[0][0], run[-1][0], run[0][1], run[-1][2], len(run))
        for run in chain.pruning._runs(rows)
    ]
    assert list(chain.runs_from_ends(ends)) == expected
