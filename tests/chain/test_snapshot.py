"""A verification sees one consistent state (issue 16 item 1): with a writer and a sealer
running throughout, it never reports a breach that is not there, and still reports one that
is. Before, the head was read after the links were streamed, so links sealed in between looked
like events missing at the end of the chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import close_old_connections, connection, transaction

from auditlog import chain
from auditlog.chain.breaches import Breach, Verification
from auditlog.models import EventChainLink
from auditlog.services import record_event
from tests.chain.conftest import at, delete_events, write

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 50


@contextmanager
def under_load() -> Iterator[Callable[[], int]]:
    """A writer posting events (two per transaction now and then) and a sealer sealing small
    batches, both running until the block ends; yields how many links exist so far."""
    running = threading.Event()
    running.set()
    errors: list[BaseException] = []

    def loop(step: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            close_old_connections()
            try:
                while running.is_set():
                    step()
                    time.sleep(0.002)  # let SQLite's other writer in
            except BaseException as exc:  # reported by the test
                errors.append(exc)
            finally:
                connection.close()

        return run

    count = iter(range(10**9))

    def post() -> None:
        with transaction.atomic():
            index = next(count)
            record_event(action="chain_test", app="tests", context={"n": index})
            if index % 3 == 0:
                record_event(action="chain_test", app="tests", context={"n": index, "second": True})

    threads = [
        threading.Thread(target=loop(post)),
        threading.Thread(target=loop(lambda: chain.seal_pending(batch_size=3))),
    ]
    for thread in threads:
        thread.start()
    try:
        yield EventChainLink.objects.count
    finally:
        running.clear()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors


def verify_repeatedly(runs: int) -> list[Verification]:
    results = []
    for _ in range(runs):
        results.append(chain.verify())
    return results


def test_verification_under_a_concurrent_writer_and_sealer_finds_no_false_breach() -> None:
    write(20)
    chain.seal_pending()
    with under_load() as sealed:
        results = verify_repeatedly(RUNS)
        assert sealed() > 20  # the load really ran while verifying
    breaches = [result.first_broken.message for result in results if result.first_broken]
    assert breaches == []
    # The walks saw the chain grow.
    assert results[-1].verified > results[0].verified


def test_verification_under_the_same_load_still_finds_a_deleted_event() -> None:
    write(20)
    chain.seal_pending()
    gone = str(at(5).event_uuid)
    delete_events(5)
    with under_load():
        results = verify_repeatedly(RUNS // 5)
    for result in results:
        broken = result.first_broken
        assert broken is not None
        assert (broken.sequence, broken.event_pk, broken.reason) == (
            5,
            gone,
            Breach.EVENTS_MISSING,
        )


def test_verification_under_the_same_load_still_finds_altered_content() -> None:
    write(20)
    chain.seal_pending()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auditlog_event SET app = 'forged' WHERE event_uuid = %s",
            [at(12).event_uuid.hex if connection.vendor == "sqlite" else at(12).event_uuid],
        )
    with under_load():
        results = verify_repeatedly(RUNS // 5)
    assert {
        (r.first_broken.sequence, r.first_broken.reason) for r in results if r.first_broken
    } == {(12, Breach.CONTENT_CHANGED)}
    assert all(not r.ok for r in results)


def test_a_verification_writes_nothing_and_leaves_no_transaction_open() -> None:
    write(3)
    chain.seal_pending()
    assert chain.verify().ok
    assert not connection.in_atomic_block
    if connection.vendor == "sqlite":
        assert not connection.connection.in_transaction
    # And a write right after it is not refused (PostgreSQL's READ ONLY ended with it).
    write(1)
