"""Thin Celery tasks: each calls one service and is safe to run twice."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from auditlog import integrity, partitions, reads, retention
from auditlog.chain import sealing
from auditlog.chain.sealing import SEAL_DEBOUNCE_SECONDS, seal_pending, wait_until


@shared_task(name="auditlog.tasks.delete_expired_events")
def delete_expired_events() -> int:
    return retention.delete_expired_events()


@shared_task(name="auditlog.tasks.gdpr_cleanup")
def gdpr_cleanup(user_pk: Any, user_uuid: str) -> int:
    """Delete the events by and about a deleted user (see ``erase_user_events``)."""
    return retention.erase_user_events(user_pk, user_uuid)


@shared_task(name="auditlog.tasks.seal_events")
def seal_events(not_before: float | None = None) -> int:
    """Chain the events committed since the last run (queued after commit, and every minute);
    ``not_before``: start no earlier (the commits of a burst are in by then)."""
    wait_until(not_before)
    sealed = seal_pending()
    if not_before is not None and sealing.locked_out:
        # Another sealer was at work and may have read the queue before the commits that
        # queued this task: ask again shortly rather than leave them to the scheduler.
        seal_events.apply_async(kwargs={"not_before": time.time() + SEAL_DEBOUNCE_SECONDS})
    return sealed


@shared_task(name="auditlog.tasks.verify_event_chain")
def verify_event_chain() -> bool:
    """Verify the whole chain; a broken link becomes an event that notifies administrators."""
    return integrity.verify_and_report().ok


@shared_task(name="auditlog.tasks.flush_reads")
def flush_reads() -> int:
    """Write the summaries of repeated reads whose window is over (see ``auditlog.reads``)."""
    return reads.flush_due()


@shared_task(name="auditlog.tasks.make_event_partitions")
def make_event_partitions() -> list[str]:
    """PostgreSQL: create the month partitions of the events and of the chain's links up to
    two months ahead, and of past months whose rows wait in the default partition."""
    return partitions.ensure_partitions()
