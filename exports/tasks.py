"""Thin Celery tasks: each calls one service and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from exports import services


# acks_late: a worker that dies mid-build leaves the message to be delivered again, and
# build_export() claims the export again (counting attempts). An unexpected error is retried
# with a backoff; build_export() itself gives up after MAX_ATTEMPTS.
@shared_task(
    name="exports.tasks.generate_export",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=services.MAX_ATTEMPTS,
)
def generate_export(export_id: str) -> None:
    services.build_export(export_id)


@shared_task(name="exports.tasks.reap_stalled_exports")
def reap_stalled_exports() -> int:
    return services.reap_stalled_exports()
