"""Verification finds the first broken link, whatever someone with database access did."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from auditlog import chain
from auditlog.chain import Breach
from auditlog.models import (
    ChainCheckpoint,
    ChainRecordKind,
    Event,
    EventChainLink,
    EventChainPending,
)
from auditlog.retention import delete_expired_events
from tests.chain.conftest import at, db_pk, delete_events, event_at, raw, rehash_from, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def ten() -> list[Event]:
    """Ten sealed events with signed checkpoints at 5 and 10."""
    write(4)
    Event(
        action="chain_test", app="tests", context={"ip": "v6"}, client_ip="2001:db8::8a2e:370:7334"
    ).save()
    chain.seal_pending()
    write(5)
    chain.seal_pending()
    sequences = ChainCheckpoint.objects.order_by("sequence").values_list("sequence", flat=True)
    assert list(sequences) == [5, 10]
    return [event_at(sequence) for sequence in range(1, 11)]


def exported() -> list[dict[str, Any]]:
    return [
        json.loads(json.dumps(chain.checkpoint_record(c)))
        for c in ChainCheckpoint.objects.order_by("sequence")
    ]


def broken(**kwargs: Any) -> chain.BrokenLink:
    result = chain.verify(**kwargs)
    assert not result.ok
    assert result.first_broken is not None
    return result.first_broken


def test_an_intact_chain_verifies(ten: list[Event]) -> None:
    result = chain.verify()
    assert result.ok
    assert (result.verified, result.checkpoints, result.head, result.unsealed) == (10, 2, 10, 0)
    assert result.summary() == (
        "Event chain intact: 10 events verified (sequences 1 to 10), 2 checkpoints checked, "
        "0 events removed on record (retention, erasure), 0 not sealed yet."
    )


def test_unsealed_events_are_counted_not_failed(ten: list[Event]) -> None:
    write(2)
    result = chain.verify()
    assert result.ok
    assert result.unsealed == 2


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", '{"n": 99}'),
        ("UPDATE auditlog_event SET action = %s WHERE event_uuid = %s", "login"),
        ("UPDATE auditlog_event SET client_ip = %s WHERE event_uuid = %s", "10.0.0.1"),
        ("UPDATE auditlog_event SET expiring = %s WHERE event_uuid = %s", False),
    ],
)
def test_a_field_changed_with_raw_sql_is_found(ten: list[Event], sql: str, value: Any) -> None:
    target = at(7)
    assert raw(sql, [value, db_pk(target)]) == 1
    link = broken()
    assert (link.sequence, link.event_pk) == (7, str(target.event_uuid))
    assert link.reason == Breach.CONTENT_CHANGED
    assert link.message == (
        f"Event chain broken at sequence 7 (event {target.event_uuid}): content changed: the "
        "event no longer matches the hash it was sealed with."
    )


def test_an_event_deleted_with_raw_sql_is_found_by_the_link_it_leaves(ten: list[Event]) -> None:
    gone = at(4)
    delete_events(4)
    link = broken()
    assert (link.sequence, link.event_pk) == (4, str(gone.event_uuid))
    assert link.reason == Breach.EVENTS_MISSING
    assert link.message == (
        f"Event chain broken at sequence 4 (event {gone.event_uuid}): events missing: the event "
        "was deleted (its link remains) and no signed prune record accounts for it; the chain "
        "resumes at sequence 5."
    )


def test_an_event_deleted_with_its_link_is_found_by_the_gap(ten: list[Event]) -> None:
    after = at(5)
    delete_events(4)
    raw("DELETE FROM auditlog_eventchainlink WHERE sequence = 4")
    link = broken()
    assert (link.sequence, link.event_pk) == (4, str(after.event_uuid))
    assert link.reason == Breach.EVENTS_MISSING
    assert "sequences 4 to 4 are gone and no signed prune record accounts for them" in link.message


def test_several_deleted_events_are_named_by_the_first(ten: list[Event]) -> None:
    first = at(4)
    delete_events(4, 5, 6)
    link = broken()
    assert (link.sequence, link.event_pk, link.reason) == (
        4,
        str(first.event_uuid),
        Breach.EVENTS_MISSING,
    )
    assert "sequences 4 to 6 are gone" in link.message


def test_the_newest_events_deleted_are_found_without_a_checkpoint(ten: list[Event]) -> None:
    raw("DELETE FROM auditlog_chaincheckpoint")
    gone = at(9)
    delete_events(9, 10)
    link = broken()
    assert (link.sequence, link.event_pk, link.reason) == (
        9,
        str(gone.event_uuid),
        Breach.EVENTS_MISSING,
    )
    assert "sequences 9 to 10 are gone" in link.message


def forge_link(event: Event, sequence: int, prev_hash: str, chain_hash: str) -> None:
    """Chain ``event`` by hand, the way someone with database access would."""
    EventChainLink.objects.create(
        sequence=sequence,
        event_uuid=event.pk,
        prev_hash=prev_hash,
        chain_hash=chain_hash,
        event_created=event.created,
    )
    EventChainPending.objects.filter(pk=event.pk).delete()


def test_an_event_inserted_with_a_forged_hash_is_found(ten: list[Event]) -> None:
    (forged,) = write(1, injected=True)
    forge_link(forged, 11, at(10).chain_hash, "f" * 64)
    link = broken()
    assert (link.sequence, link.event_pk, link.reason) == (
        11,
        str(forged.pk),
        Breach.CONTENT_CHANGED,
    )


def test_an_event_inserted_with_a_consistent_hash_but_a_made_up_link_is_found(
    ten: list[Event],
) -> None:
    (forged,) = write(1, injected=True)
    row = Event.objects.filter(pk=forged.pk).values(*chain.CANONICAL_FIELDS).get()
    prev = "a" * 64
    forge_link(forged, 11, prev, chain.link_hash(prev, chain.canonical_event(row)))
    link = broken()
    assert (link.sequence, link.reason) == (11, Breach.LINK_BROKEN)


def test_a_rehashed_event_breaks_the_link_to_the_next(ten: list[Event]) -> None:
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"n": 1}', db_pk(at(3))])
    row = Event.objects.filter(pk=at(3).event_uuid).values(*chain.CANONICAL_FIELDS).get()
    EventChainLink.objects.filter(sequence=3).update(
        chain_hash=chain.link_hash(
            at(3).prev_hash, chain.canonical_event(row, queued_at=at(3).queued_at)
        )
    )
    link = broken()
    assert (link.sequence, link.reason) == (4, Breach.LINK_BROKEN)


def test_a_chain_recomputed_without_the_key_is_caught_by_the_checkpoints(
    ten: list[Event],
) -> None:
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"n": 1}', db_pk(at(3))])
    rehash_from(3)
    link = broken()
    assert (link.sequence, link.event_pk, link.reason) == (
        5,
        str(at(5).event_uuid),
        Breach.CHECKPOINT_MISMATCH,
    )
    assert "history was rewritten" in link.message


def test_a_recomputed_chain_with_its_checkpoints_deleted_is_caught_by_an_exported_file(
    ten: list[Event],
) -> None:
    safekeeping = exported()
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"n": 1}', db_pk(at(8))])
    rehash_from(8)
    raw("DELETE FROM auditlog_chaincheckpoint")
    assert chain.verify().ok  # the database alone cannot tell any more

    link = broken(extra_checkpoints=safekeeping)
    assert (link.sequence, link.reason) == (10, Breach.CHECKPOINT_MISMATCH)
    assert "exported checkpoint" in link.message


def test_events_removed_from_the_end_are_caught_by_a_later_checkpoint(ten: list[Event]) -> None:
    safekeeping = exported()
    delete_events(9, 10)
    raw("DELETE FROM auditlog_eventchainlink WHERE sequence >= 9")
    link = broken()
    assert (link.sequence, link.reason) == (10, Breach.EVENTS_MISSING)
    assert "the chain ends at sequence 8" in link.message

    raw("DELETE FROM auditlog_chaincheckpoint WHERE sequence = 10")
    assert chain.verify().ok
    assert broken(extra_checkpoints=safekeeping).reason == Breach.EVENTS_MISSING


def test_a_checkpoint_with_a_bad_signature_is_found(ten: list[Event]) -> None:
    ChainCheckpoint.objects.create(
        kind=ChainRecordKind.CHECKPOINT,
        sequence=7,
        chain_hash=at(7).chain_hash,
        signature="0" * 64,
        key_id=chain.key_id(),
    )
    link = broken()
    assert (link.sequence, link.event_pk, link.reason) == (
        7,
        str(at(7).event_uuid),
        Breach.FORGED_CHECKPOINT,
    )


def test_checkpoints_signed_with_another_key_name_both_keys(
    ten: list[Event], settings: Any
) -> None:
    settings.AUDIT_CHAIN_KEY = "another-key-of-sufficient-length-0123456789"
    link = broken()
    assert (link.sequence, link.reason) == (5, Breach.FORGED_CHECKPOINT)
    assert "signed with key" in link.message
    assert chain.key_id() in link.message


def test_a_forged_exported_checkpoint_is_found(ten: list[Event]) -> None:
    safekeeping = exported()
    safekeeping[0]["signature"] = "1" * 64
    assert broken(extra_checkpoints=safekeeping).reason == Breach.FORGED_CHECKPOINT


def test_the_first_of_several_breaks_is_the_one_reported(ten: list[Event]) -> None:
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"x": 1}', db_pk(at(8))])
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"x": 1}', db_pk(at(2))])
    assert broken().sequence == 2


def test_verification_from_a_sequence_is_anchored_on_the_link_before(ten: list[Event]) -> None:
    result = chain.verify(from_sequence=6)
    assert result.ok
    assert (result.verified, result.checkpoints) == (5, 1)
    delete_events(6)
    assert broken(from_sequence=6).reason == Breach.EVENTS_MISSING
    assert chain.verify(from_sequence=8).ok


def test_a_bounded_range_notices_events_missing_at_its_end(ten: list[Event]) -> None:
    delete_events(7, 8)
    link = broken(from_sequence=1, to_sequence=8)
    assert (link.sequence, link.reason) == (7, Breach.EVENTS_MISSING)
    assert chain.verify(from_sequence=1, to_sequence=6).ok


def test_progress_is_reported_for_every_event() -> None:
    write(5)
    chain.seal_pending()
    seen: list[int] = []
    chain.verify(progress=seen.append)
    assert sum(seen) == 5


# --- Retention --------------------------------------------------------------------------------


def _expire(events: list[Event]) -> None:
    Event.objects.filter(pk__in=[e.pk for e in events]).update(
        expires=timezone.now() - timedelta(minutes=1)
    )


def test_retention_keeps_the_chain_verifiable_with_signed_prune_records() -> None:
    events = write(10)
    _expire(events[:4])
    assert delete_expired_events() == 4  # seals first, then deletes

    prune = ChainCheckpoint.objects.get(kind=ChainRecordKind.PRUNE)
    assert (prune.first_sequence, prune.last_sequence, prune.count) == (1, 4, 4)
    assert prune.first_prev == chain.GENESIS
    assert prune.last_hash == at(5).prev_hash
    assert chain.signature_valid(chain.checkpoint_record(prune))
    result = chain.verify()
    assert result.ok
    assert (result.verified, result.pruned) == (6, 4)


def test_scattered_deletions_in_small_batches_are_each_recorded() -> None:
    events = write(10)
    _expire([events[i] for i in (1, 2, 5, 8, 9)])
    assert delete_expired_events(batch_size=2) == 5
    ranges = sorted(
        ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).values_list(
            "first_sequence", "last_sequence"
        )
    )
    covered = [seq for first, last in ranges for seq in range(first, last + 1)]
    assert covered == [2, 3, 6, 9, 10]
    result = chain.verify()
    assert result.ok
    assert (result.verified, result.pruned, result.head) == (5, 5, 10)


def test_when_everything_expired_new_events_chain_after_the_removed_range() -> None:
    _expire(write(6))
    assert delete_expired_events() == 6
    # The first checkpoint (at 6) lies in the removed range: checked against the prune record.
    before = chain.verify()
    assert before.ok
    assert (before.verified, before.pruned, before.checkpoints, before.head) == (0, 6, 1, 6)
    write(2)
    chain.seal_pending()
    assert at(7).prev_hash == ChainCheckpoint.objects.get(kind=ChainRecordKind.PRUNE).last_hash
    result = chain.verify()
    assert result.ok
    assert (result.verified, result.pruned, result.head) == (2, 6, 8)


def test_a_deletion_outside_retention_is_still_caught() -> None:
    events = write(10)
    _expire(events[:3])
    delete_expired_events()
    delete_events(7)
    link = broken()
    assert (link.sequence, link.reason) == (7, Breach.EVENTS_MISSING)


def test_a_forged_prune_record_does_not_excuse_a_gap() -> None:
    write(10)
    chain.seal_pending()
    first, last = at(4), at(6)
    delete_events(4, 5, 6)
    raw("DELETE FROM auditlog_eventchainlink WHERE sequence BETWEEN 4 AND 6")
    ChainCheckpoint.objects.create(
        kind=ChainRecordKind.PRUNE,
        sequence=6,
        chain_hash=last.chain_hash,
        first_sequence=4,
        last_sequence=6,
        first_prev=first.prev_hash,
        last_hash=last.chain_hash,
        count=3,
        signature="2" * 64,
        key_id=chain.key_id(),
    )
    link = broken()
    assert (link.sequence, link.reason) == (4, Breach.FORGED_CHECKPOINT)


def test_a_deleted_prune_record_leaves_an_unexplained_gap() -> None:
    events = write(8)
    _expire(events[2:4])
    delete_expired_events()
    assert chain.verify().ok
    raw("DELETE FROM auditlog_chaincheckpoint WHERE kind = 'prune'")
    assert broken().reason == Breach.EVENTS_MISSING


def test_prune_records_are_written_in_the_deleting_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = write(5)
    _expire(events[:2])
    chain.seal_pending()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    # The last step of the batch fails: deleting the events (the ORM's batch, SQLite), or
    # storing the prune records after the statement that deleted events and links did
    # (PostgreSQL's one-statement batch).
    monkeypatch.setattr(type(Event.objects.all()), "_raw_delete", fail)
    monkeypatch.setattr(chain.pruning, "record_runs", fail)
    with pytest.raises(RuntimeError):
        delete_expired_events()
    assert not ChainCheckpoint.objects.filter(kind=ChainRecordKind.PRUNE).exists()
    assert Event.objects.count() == 5
    assert EventChainLink.objects.count() == 5


def test_retention_deletes_the_links_and_queue_entries_of_what_it_deletes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sealed = write(6)
    chain.seal_pending()
    queued = write(3)
    _expire([*sealed[:2], *queued[:2]])
    monkeypatch.setattr(
        chain.sealing, "seal_pending", lambda **_: 0
    )  # two expired ones still queued

    assert delete_expired_events() == 4

    gone = [event.pk for event in [*sealed[:2], *queued[:2]]]
    assert not EventChainLink.objects.filter(event_uuid__in=gone).exists()
    assert not EventChainPending.objects.filter(event_uuid__in=gone).exists()
    assert list(EventChainPending.objects.values_list("pk", flat=True)) == [queued[2].pk]
    prune = ChainCheckpoint.objects.get(kind=ChainRecordKind.PRUNE)
    assert (prune.first_sequence, prune.last_sequence, prune.count) == (1, 2, 2)
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.pruned, result.unsealed, result.unchained) == (4, 2, 1, 0)


def test_hashes_are_computed_from_the_values_the_database_gives_back(ten: list[Event]) -> None:
    # An IPv6 address comes back from PostgreSQL's inet column in its own spelling.
    event = Event.objects.get(client_ip="2001:db8::8a2e:370:7334")
    row = Event.objects.filter(pk=event.pk).values(*chain.CANONICAL_FIELDS).get()
    assert b'"client_ip":"2001:db8::8a2e:370:7334"' in chain.canonical_event(row)
    link = EventChainLink.objects.get(event_uuid=event.pk)
    canonical = chain.canonical_event(row, queued_at=link.queued_at)
    assert link.chain_hash == chain.link_hash(link.prev_hash, canonical)


def test_a_link_field_emptied_with_raw_sql_is_found_not_a_crash(ten: list[Event]) -> None:
    raw("UPDATE auditlog_eventchainlink SET prev_hash = '' WHERE sequence = 6")
    link = broken()
    assert (link.sequence, link.reason) == (6, Breach.CONTENT_CHANGED)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("yesterday", "the event no longer matches the hash it was sealed with."),
        ("2024-13-45 00:00:00", "the event holds values that cannot be read back"),
    ],
)
def test_values_that_cannot_be_read_back_are_found_not_a_crash(
    ten: list[Event], value: str, detail: str
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stores a timestamp as free text")
    raw("UPDATE auditlog_event SET created = %s WHERE event_uuid = %s", [value, db_pk(at(4))])
    link = broken()
    assert (link.sequence, link.reason) == (4, Breach.CONTENT_CHANGED)
    assert detail in link.message


def test_the_daily_verification_notifies_the_administrators_of_a_break(
    ten: list[Event], admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from auditlog.tasks import verify_event_chain
    from notifications.models import Notification

    assert verify_event_chain() is True
    assert not Event.objects.filter(action="system_task_exception").exists()

    raw("UPDATE auditlog_event SET app = 'forged' WHERE event_uuid = %s", [db_pk(at(7))])
    chain.sealing._next_enqueue = 0.0  # the report is sealed (and so reaches the rules) on commit
    with django_capture_on_commit_callbacks(execute=True):
        assert verify_event_chain() is False
    report = Event.objects.get(action="system_task_exception")
    assert report.context["sequence"] == 7
    assert report.context["task"] == "verify_event_chain"
    assert "sequence 7" in report.context["message"]
    notification = Notification.objects.get(user=admin_user)
    assert notification.event_id == report.pk
