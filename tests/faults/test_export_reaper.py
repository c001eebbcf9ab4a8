"""The reaper of stalled exports: a build whose worker died stops refreshing its heartbeat, and
the reaper (run every minute by the scheduler) queues it again, or fails it once its attempts
are used up; a build that shows signs of life is left alone."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.services import record_event
from exports.models import DataExport, ExportStatus
from exports.services import MAX_ATTEMPTS, _heartbeat, reap_stalled_exports
from notifications.models import Notification, NotificationSeverity
from tests.conftest import grant

LONG_AGO = timedelta(hours=1)


def running_export(user: Any, *, attempts: int, silent_for: timedelta) -> DataExport:
    """An export as a dead worker leaves it: running, its heartbeat silent for a while."""
    beat = timezone.now() - silent_for
    return DataExport.objects.create(
        requested_by=user,
        content_type=ContentType.objects.get_for_model(Event),
        status=ExportStatus.RUNNING,
        attempts=attempts,
        started_on=beat,
        heartbeat=beat,
    )


@pytest.fixture
def exporter(auditor: Any, media_root: Any) -> Any:
    return grant(auditor, "exports.add_dataexport")


@pytest.mark.django_db
def test_a_silent_build_is_queued_again_and_built(exporter, django_capture_on_commit_callbacks):
    record_event(action=EventAction.LOGIN, app="tests", context={"username": "ana"})
    export = running_export(exporter, attempts=1, silent_for=LONG_AGO)
    with django_capture_on_commit_callbacks(execute=True):
        assert reap_stalled_exports() == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.COMPLETED  # built again (eagerly, in tests)
    assert export.attempts == 2 and export.is_ready


@pytest.mark.django_db
def test_a_silent_build_on_its_last_attempt_fails_with_the_reason(exporter) -> None:
    export = running_export(exporter, attempts=MAX_ATTEMPTS, silent_for=LONG_AGO)
    assert reap_stalled_exports() == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and not export.is_ready
    assert f"interrupted {MAX_ATTEMPTS} times" in export.error
    alert = Notification.objects.get(user=exporter)
    assert alert.severity == NotificationSeverity.ALERT and "export failed" in alert.body


@pytest.mark.django_db
def test_builds_that_show_signs_of_life_and_finished_exports_are_left_alone(exporter) -> None:
    alive = running_export(exporter, attempts=1, silent_for=timedelta(seconds=5))
    finished = running_export(exporter, attempts=1, silent_for=LONG_AGO)
    DataExport.objects.filter(pk=finished.pk).update(status=ExportStatus.COMPLETED)
    assert reap_stalled_exports() == 0
    assert DataExport.objects.get(pk=alive.pk).status == ExportStatus.RUNNING
    assert DataExport.objects.get(pk=finished.pk).status == ExportStatus.COMPLETED


@pytest.mark.django_db
def test_a_build_from_before_heartbeats_is_judged_by_its_start(exporter) -> None:
    export = running_export(exporter, attempts=MAX_ATTEMPTS, silent_for=LONG_AGO)
    DataExport.objects.filter(pk=export.pk).update(heartbeat=None)
    assert reap_stalled_exports() == 1
    assert DataExport.objects.get(pk=export.pk).status == ExportStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_a_running_build_refreshes_its_heartbeat(exporter, settings: Any) -> None:
    settings.EXPORT_STALL_TIMEOUT = timedelta(seconds=1)  # a beat every second
    export = running_export(exporter, attempts=1, silent_for=LONG_AGO)
    with _heartbeat(export.pk, 1):
        time.sleep(2.5)
    export.refresh_from_db()
    assert timezone.now() - export.heartbeat < timedelta(seconds=2)


def test_the_scheduler_runs_the_reaper_every_minute() -> None:
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if "reap" in e["task"]]
    assert [entry["task"] for entry in entries] == ["exports.tasks.reap_stalled_exports"]
    assert entries[0]["schedule"].minute == set(range(60))
