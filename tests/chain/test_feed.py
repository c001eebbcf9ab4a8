"""Every sealed event is published to auditlog.feed after its batch commits, in chain order,
whichever way it was written: an INSERT through a cursor behind the ORM's back included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction

from auditlog import chain, feed
from auditlog.models import EventChainLink
from tests.chain.conftest import insert_raw
from tests.chain.test_backdating import forged_login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received() -> Iterator[list[list[feed.SealedEvent]]]:
    batches: list[list[feed.SealedEvent]] = []

    def subscriber(events: list[feed.SealedEvent], **_: Any) -> None:
        batches.append(list(events))

    feed.events_sealed.connect(subscriber, dispatch_uid="tests.chain.feed")
    yield batches
    feed.events_sealed.disconnect(dispatch_uid="tests.chain.feed")


def inserted(count: int) -> None:
    """Events written past the application (no post_save, so nothing seals them yet)."""
    insert_raw(*(forged_login(timedelta(0), n=index) for index in range(count)))


def test_an_event_inserted_with_plain_sql_is_sealed_and_published(
    received: list[list[feed.SealedEvent]],
) -> None:
    event = forged_login(timedelta(0))
    insert_raw(event)  # a plain INSERT through a cursor: no post_save, no service

    assert chain.seal_pending() == 1

    link = EventChainLink.objects.get(event_uuid=event.pk)
    assert received == [[feed.SealedEvent(str(event.pk), "login", link.sequence, link.chain_hash)]]
    assert link.sequence == 1


def test_each_batch_is_published_after_it_commits_in_chain_order(
    received: list[list[feed.SealedEvent]],
) -> None:
    inserted(5)
    seen_committed: list[bool] = []
    feed.events_sealed.connect(
        lambda events, **_: seen_committed.append(
            EventChainLink.objects.filter(sequence__in=[e.sequence for e in events]).count()
            == len(events)
        ),
        weak=False,
        dispatch_uid="tests.chain.feed.committed",
    )
    try:
        assert chain.seal_pending(batch_size=2) == 5
    finally:
        feed.events_sealed.disconnect(dispatch_uid="tests.chain.feed.committed")

    assert [[e.sequence for e in batch] for batch in received] == [[1, 2], [3, 4], [5]]
    links = dict(EventChainLink.objects.values_list("sequence", "chain_hash"))
    assert all(e.chain_hash == links[e.sequence] for batch in received for e in batch)
    assert seen_committed == [True, True, True]


def test_a_batch_rolled_back_is_not_published(received: list[list[feed.SealedEvent]]) -> None:
    inserted(2)
    with transaction.atomic():
        chain.seal_pending()
        transaction.set_rollback(True)
    assert received == []
    assert not EventChainLink.objects.exists()
