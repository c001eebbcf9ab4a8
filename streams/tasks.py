"""Thin Celery tasks: a run per destination, safe to run twice (the lease lets one through)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import shared_task

from auditlog.feed import SealedEvent
from streams import services


@shared_task(name="streams.tasks.deliver_stream")
def deliver_stream(destination_id: str) -> int:
    """One delivery run; queues the next at once when it stopped with events left."""
    run = services.deliver(destination_id)
    if run.more:
        deliver_stream.delay(destination_id)
    return run.sent


@shared_task(name="streams.tasks.deliver_streams")
def deliver_streams() -> int:
    """A run for every destination that may send (the schedule, and each sealed batch)."""
    queued = services.deliverable_ids()
    for destination_id in queued:
        deliver_stream.delay(str(destination_id))
    return len(queued)


def on_events_sealed(sender: Any, events: Sequence[SealedEvent], **_: Any) -> None:
    """Subscriber of :data:`auditlog.feed.events_sealed`: wake delivery."""
    if events and services.deliverable_ids():
        deliver_streams.delay()
