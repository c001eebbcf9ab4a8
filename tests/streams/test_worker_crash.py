"""A real Celery worker killed (SIGKILL) after the receiver accepted a batch but before the
worker heard so: the next worker sends that batch again once the dead one's lease expires.
Duplicates come only from the crashed batch, and nothing is missing or out of order."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

from auditlog.chain.sealing import seal_pending
from auditlog.context import audit_ignore
from auditlog.models import EventAction, EventChainLink
from auditlog.services import record_event
from streams import verify_stream
from streams.models import Destination, Transport
from tests.streams.conftest import SIGNING_KEY, make_destination
from tests.streams.receivers import http_receiver
from tests.workers import redis_url_or_skip, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "streams-secret-key-shared-with-the-workers"
WORKER_ENV = {
    "STREAMS_LEASE": "seconds=3",
    "STREAMS_RETRY_BASE": "seconds=1",
    "STREAMS_SECRET_KEY": SECRET,
}


def _worker_pid(queue: str) -> int:
    """The worker process of ``queue`` (a name unique to this test's worker)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"CELERY_QUEUE={queue}".encode() in environ:
            return int(entry.name)
    raise LookupError(queue)


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def _lease_expired(pk: object) -> Callable[[], bool]:
    def expired() -> bool:
        lease = Destination.objects.get(pk=pk).lease_until
        return lease is None or lease < timezone.now()

    return expired


def test_a_worker_killed_mid_batch_causes_duplicates_of_that_batch_only(
    tmp_path: Path, settings
) -> None:
    broker = redis_url_or_skip()
    settings.STREAMS_SECRET_KEY = SECRET
    with http_receiver() as receiver:
        destination = make_destination(
            transport=Transport.HTTP, url=receiver.url, batch_size=3, paused=True
        )
        for index in range(9):
            record_event(action=EventAction.LOGIN, app="tests", context={"n": index})
        seal_pending()
        with audit_ignore():  # set-up: the un-pause's own event is not what is measured
            Destination.objects.filter(pk=destination.pk).update(paused=False)
        receiver.hold_after_accepting = {2}
        (tmp_path / "w1").mkdir()
        (tmp_path / "w2").mkdir()
        with running_worker(broker, data_dir=tmp_path / "w1", extra_env=WORKER_ENV) as sender:
            pid = _worker_pid(sender.conf.task_default_queue)
            sender.send_task("streams.tasks.deliver_stream", args=[str(destination.pk)])
            wait_until(lambda: receiver.requests >= 2, message="the second batch to arrive")
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: _dead(pid), message="the worker to die")
        destination.refresh_from_db()
        assert destination.events_sent == 3  # the second batch was never confirmed
        assert destination.lease_holder  # the dead worker's lease, until it expires
        receiver.release.set()
        with running_worker(broker, data_dir=tmp_path / "w2", extra_env=WORKER_ENV) as sender:
            # The scheduler sends this every 15 s; here it is sent once the dead worker's
            # lease has expired (before, the run would find the destination taken).
            wait_until(_lease_expired(destination.pk), message="the dead worker's lease")
            sender.send_task("streams.tasks.deliver_stream", args=[str(destination.pk)])
            head = EventChainLink.objects.order_by("-sequence")[0].sequence
            wait_until(
                lambda: Destination.objects.get(pk=destination.pk).position == head,
                timeout=60,
                message="the stream to catch up",
            )
    records = receiver.records()
    sequences = [r["chain"]["sequence"] for r in records]
    chain = list(EventChainLink.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sorted(set(sequences)) == chain  # nothing missing
    assert sequences == [*chain[:6], *chain[3:]]  # the crashed batch (4-6) twice, in order
    report = verify_stream.verify([json.dumps(r) for r in records], key=SIGNING_KEY)
    assert report.problems == [] and report.duplicates == 3
