"""Real Celery workers: against Redis, and on the embedded broker the quick start uses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from auditlog.models import Event
from auditlog.services import record_event
from tests.workers import redis_url_or_skip, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _expired_events(count: int) -> list[Event]:
    events = []
    for _ in range(count):
        events.append(record_event(action="foo", app="tests"))
    Event.objects.update(expires=timezone.now() - timedelta(minutes=1))
    return events


def test_a_real_worker_on_redis_runs_the_retention_task(tmp_path: Path) -> None:
    broker = redis_url_or_skip()
    _expired_events(3)
    with running_worker(broker, data_dir=tmp_path) as sender:
        sender.send_task("auditlog.tasks.delete_expired_events")
        wait_until(lambda: not Event.objects.exists(), message="the worker to delete the events")
        assert "succeeded" in sender.log_path.read_text()


def test_the_embedded_broker_runs_a_worker_and_scheduler_with_no_external_service(
    tmp_path: Path,
) -> None:
    _expired_events(2)
    with running_worker("filesystem://", beat=True, data_dir=tmp_path) as sender:
        sender.send_task("auditlog.tasks.delete_expired_events")
        wait_until(lambda: not Event.objects.exists(), message="the worker to delete the events")
        wait_until(lambda: "beat: Starting" in sender.log_path.read_text(), message="the scheduler")
