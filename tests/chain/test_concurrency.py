"""Writers keep writing while sealers seal: no event is lost or sequenced twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from auditlog import chain
from auditlog.bulk import write_events
from auditlog.models import ChainCheckpoint, Event, EventChainLink
from auditlog.retention import delete_expired_events
from auditlog.services import record_event

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 4
EVENTS_PER_WRITER = 25


def _in_thread(work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


def test_concurrent_writers_and_sealers_lose_nothing_and_sequence_each_event_once() -> None:
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def writer(number: int) -> Callable[[], None]:
        def work() -> None:
            close_old_connections()
            for index in range(EVENTS_PER_WRITER):
                # A business transaction with two events; the after-commit trigger (eager in
                # tests) seals from this thread too.
                with transaction.atomic():
                    record_event(
                        action="chain_test", app="tests", context={"w": number, "i": index}
                    )
                    if index % 5 == 0:
                        record_event(
                            action="chain_test", app="tests", context={"w": number, "x": index}
                        )

        return work

    def sealer() -> None:
        while writing.is_set():
            chain.seal_pending(batch_size=7)
            time.sleep(0.005)  # let SQLite's writers in between

    threads = [_in_thread(writer(n), errors) for n in range(WRITERS)]
    sealers = [_in_thread(sealer, errors) for _ in range(2)]
    for thread in [*sealers, *threads]:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writing.clear()
    for thread in sealers:
        thread.join(timeout=120)
    assert not errors, errors

    chain.seal_pending()
    expected = WRITERS * (EVENTS_PER_WRITER + EVENTS_PER_WRITER // 5)
    sequences = list(EventChainLink.objects.order_by("sequence").values_list("sequence", flat=True))
    assert Event.objects.count() == expected
    assert sequences == list(range(1, expected + 1))
    assert EventChainLink.objects.values("event_uuid").distinct().count() == expected
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.unsealed, result.unchained) == (expected, 0, 0)


def test_retention_while_events_are_written_and_sealed_keeps_the_chain_verifiable() -> None:
    errors: list[BaseException] = []
    expired = timezone.now() - timedelta(minutes=1)
    write_events(
        Event(action="login", app="old", context={"old": i}, created=expired, expires=expired)
        for i in range(30)
    )

    def writer() -> None:
        for index in range(30):
            record_event(action="chain_test", app="tests", context={"new": index})

    def retention() -> None:
        for _ in range(3):
            delete_expired_events(batch_size=4)

    threads = [_in_thread(writer, errors), _in_thread(retention, errors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    chain.seal_pending()
    assert not Event.objects.filter(app="old").exists()
    result = chain.verify()
    assert result.ok, result.first_broken
    assert result.verified == 30
    # Old events sealed before they went are accounted for by prune records.
    assert (
        result.pruned
        == ChainCheckpoint.objects.filter(kind="prune").aggregate(total=Sum("count"))["total"]
        or 0
    )
