"""Thin Celery tasks: each calls one service and is safe to run twice (a sync of a source
that is already syncing returns at once)."""

from __future__ import annotations

from celery import shared_task

from sources import services


@shared_task(name="sources.tasks.sync_source")
def sync_source(source_id: str, full: bool = False) -> int:
    """One sync of one source (the pages' "sync now"); returns how many events it imported."""
    return services.sync_source(source_id=source_id, full=full).imported


@shared_task(name="sources.tasks.sync_sources")
def sync_sources() -> int:
    """Follow every enabled source (the scheduler, every minute): one task per source, so a
    long backfill holds up no other source. Returns how many were queued."""
    queued = services.enabled_source_ids()
    for source_id in queued:
        sync_source.delay(str(source_id))
    return len(queued)
