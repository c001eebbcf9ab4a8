"""Sealing: giving each queued event the next link of the chain, and asking for that soon
after events commit.

:func:`seal_pending` (a Celery task, queued after commit at most once per
:data:`SEAL_DEBOUNCE_SECONDS` per process, and every minute by the scheduler) takes the queue
in ``(created, event_uuid)`` order and gives each event the next link: ``sequence``, the
previous link's hash (``prev_hash``), the database's clock when the event was queued
(``queued_at``) and its own hash ``chain_hash = sha256(prev_hash + canonical JSON)``
(:mod:`auditlog.chain.canonical`). One sealer works at a time (a PostgreSQL advisory lock;
SQLite's single writer), in short transactions that write whole batches or nothing. After each
batch commits, its events are published to :mod:`auditlog.feed` in chain order, whichever way
they were written.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import transaction

from auditlog import feed, rollups
from auditlog.chain.canonical import GENESIS, canonical_event, link_hash
from auditlog.chain.links import (
    NewLink,
    beyond_backdate_bound,
    chain_head,
    insert_links,
    queued_by_trigger,
    take_queued,
    take_unlinked,
    try_lock,
)
from auditlog.chain.signing import maybe_checkpoint
from project.loglevels import TRACE

logger = logging.getLogger(__name__)

# Per batch: a commit, a publication to the feed (a task for the notification rules) and a
# few statements; 5,000 spends about a sixth less per event than 1,000 through a backlog, and
# a batch still commits within half a second.
SEAL_BATCH_SIZE = 5_000
# Short: an event is streamed live once sealed (commit to client within a second).
SEAL_DEBOUNCE_SECONDS = 0.2


def wait_until(not_before: float | None) -> None:
    """Wait until ``not_before`` (a time.time()), and no longer than the debounce interval
    whatever the clocks of the two machines say."""
    if not_before is not None:
        time.sleep(min(SEAL_DEBOUNCE_SECONDS, max(0.0, not_before - time.time())))


def seal_pending(*, batch_size: int = SEAL_BATCH_SIZE, now: datetime | None = None) -> int:
    """Seal every queued event, oldest first, one short transaction per batch; return how
    many were sealed. A batch is written whole or not at all, and published to
    :mod:`auditlog.feed` once it commits. When another sealer holds the lock this returns at
    once (that one seals the rest). Links are only ever inserted and the events table is only
    read, so running it twice changes nothing. A checkpoint follows when one is due."""
    global locked_out
    total = 0
    locked_out = False
    while True:
        batch = _seal_batch(batch_size)
        if batch is None:
            locked_out = True
            return total
        sealed, taken = batch
        total += sealed
        if taken < batch_size:
            break
    maybe_checkpoint(now=now)
    if total:
        logger.info("Sealed %d events", total)
    return total


def _seal_batch(batch_size: int) -> tuple[int, int] | None:
    """One batch in one transaction: ``(sealed, taken from the queue)``, or ``None`` when
    another sealer holds the lock."""
    with transaction.atomic(), _cyclic_gc_paused():
        if not try_lock():
            logger.log(TRACE, "seal: another sealer holds the lock; leaving it the queue")
            return None
        taken = take_queued(batch_size) if queued_by_trigger() else take_unlinked(batch_size)
        if not taken:
            logger.log(TRACE, "seal: nothing queued")
            return 0, 0
        head = chain_head()
        sequence, prev = (head.sequence, head.chain_hash) if head else (0, GENESIS)
        tracing = logger.isEnabledFor(TRACE)
        if tracing:
            logger.log(
                TRACE,
                "seal: %d queued, %d found, chain head at %d",
                len(taken),
                sum(entry.event is not None for entry in taken),
                sequence,
                extra={"prev_hash": prev},
            )
        links: list[NewLink] = []
        sealed: list[feed.SealedEvent] = []
        counted: list[Mapping[str, Any]] = []
        for entry in taken:
            event = entry.event
            if event is None or entry.linked:
                _warn_unsealable(entry.pk, gone=event is None)  # its queue entry goes all the same
                continue
            _warn_if_backdated(event, entry.behind)
            sequence += 1
            digest = link_hash(prev, canonical_event(event, queued_at=entry.queued_at))
            links.append((sequence, entry.pk, prev, digest, entry.queued_at, event["created"]))
            sealed.append(feed.SealedEvent(str(entry.pk), str(event["action"]), sequence, digest))
            counted.append(event)
            if tracing:
                logger.log(
                    TRACE,
                    "seal: linked event at %d",
                    sequence,
                    extra={"event_pk": str(entry.pk), "chain_hash": digest},
                )
            prev = digest
        insert_links(links)
        rollups.add(counted)  # the chart's and the map's hourly counts, in this transaction
        # After the outermost commit (at once when this is it): subscribers see only
        # events that are stored and chained.
        transaction.on_commit(lambda: feed.publish(sealed), robust=True)
    return len(links), len(taken)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Without Python's cyclic garbage collector for one batch: the batch builds a few
    hundred thousand short-lived containers (decoded JSON, rows, links), none in a cycle, so
    reference counting frees them all, while the collector, set off every 700 allocations,
    walked every object of the process again and again (a third of the batch's time by
    measure). Left as it was found (another caller may have paused it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _warn_unsealable(key: UUID, *, gone: bool) -> None:
    if gone:
        logger.warning("Event %s was deleted before it was sealed; nothing to chain", key)
    else:
        # Only a row inserted again under the pk of a chained event gets here: its link
        # stays, and verification compares it with the row now stored.
        logger.warning("Event %s is chained already; it was inserted again", key)


def _warn_if_backdated(event: Mapping[str, Any], behind: float | None) -> None:
    """It is sealed all the same (the chain records what is there); verification reports it."""
    behind = beyond_backdate_bound(behind, event["context"])
    if behind is not None:
        logger.warning(
            "Event %s (%s) claims to be created %s before the database received it, more than "
            "AUDIT_CHAIN_BACKDATE_BOUND allows: a backdated event; verification reports it",
            event["event_uuid"],
            event["action"],
            timedelta(seconds=round(behind)),
        )


# --- Queueing a seal after commit ---------------------------------------------------------------

_next_enqueue = 0.0
# Whether this process's last seal_pending() found another sealer at work: that one may have
# read the queue before the commits that asked for this seal (see seal_events).
locked_out = False


def request_seal() -> None:
    """Queue a seal once the current transaction commits. The recording service asks after
    every write; :func:`enqueue_seal` makes a burst of commits one task."""
    # robust: a broker that is down must not turn a committed write into an error.
    transaction.on_commit(enqueue_seal, robust=True)


def enqueue_seal() -> None:
    """After a commit: queue a seal to start :data:`SEAL_DEBOUNCE_SECONDS` from now, unless this
    process queued one in the last :data:`SEAL_DEBOUNCE_SECONDS`. Deciding at commit time (not
    when the event is written) is what makes the skip safe: a commit skipped here happened
    before the queued task starts, so that task seals it. Events reach the live stream when
    sealed, so the delay is short; the scheduler's run every minute seals anything written past
    the application. With tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``) there is no
    queued task to wait for: every commit seals at once."""
    global _next_enqueue
    from auditlog.tasks import seal_events  # a lazy task enqueue: tasks import the chain

    if seal_events.app.conf.task_always_eager:
        seal_events.apply_async()
        return
    now = time.monotonic()
    if now < _next_enqueue:
        logger.log(TRACE, "seal: one is queued already (debounced)")
        return
    _next_enqueue = now + SEAL_DEBOUNCE_SECONDS
    # Not a countdown: Celery holds a task with an ETA on a timer that adds up to half a second;
    # the task waits out the rest of the interval itself.
    seal_events.apply_async(kwargs={"not_before": time.time() + SEAL_DEBOUNCE_SECONDS})
