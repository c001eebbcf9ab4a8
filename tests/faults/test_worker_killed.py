"""A Celery worker killed (SIGKILL) in the middle of an export build: the export is never
served half-written, and the reaper notices the silent build and has it built again."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.services import record_event
from exports.models import DataExport, ExportStatus
from tests.conftest import grant
from tests.exports.conftest import EVENTS, EXPORTS, celery_sends_to, csv_rows, export_url
from tests.workers import redis_url_or_skip, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STALL_TIMEOUT = "seconds=3"
STALL = timedelta(seconds=3)


def _is_dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")  # a zombie: killed, not yet reaped by its parent


def _silent_for_longer_than_the_stall_timeout(export_id: str) -> bool:
    beat = DataExport.objects.get(pk=export_id).heartbeat
    return beat is not None and timezone.now() - beat > STALL + timedelta(seconds=1)


def _status(export_id: str) -> str:
    return DataExport.objects.get(pk=export_id).status


def test_a_worker_killed_mid_build_never_serves_a_half_file_and_the_export_is_rebuilt(
    api_as, auditor, media_root: Path, tmp_path: Path
) -> None:
    broker = redis_url_or_skip()
    exporter = grant(auditor, "exports.add_dataexport")
    for index in range(5):
        record_event(action=EventAction.LOGIN, app="tests", context={"username": f"user{index}"})
    client = api_as(exporter)
    browser = Client()
    browser.force_login(exporter)
    marker = tmp_path / "stalled"
    stalling = {
        "MEDIA_ROOT": str(media_root),
        "STORAGE_BACKEND": "tests.faults.storage.StallingStorage",
        "STALL_MARKER": str(marker),
        "EXPORT_STALL_TIMEOUT": STALL_TIMEOUT,
    }

    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    with running_worker(broker, data_dir=tmp_path / "w1", extra_env=stalling) as sender:
        with celery_sends_to(broker, queue=sender.conf.task_default_queue):
            response = client.post(export_url(EVENTS, {"actions": "login"}))
        assert response.status_code == 201, response.content
        export_id = response.json()["id"]
        wait_until(marker.exists, timeout=60, message="the build to reach the storage")
        os.kill(int(marker.read_text()), signal.SIGKILL)
        wait_until(lambda: _is_dead(int(marker.read_text())), message="the worker to die")

    # Nobody finishes the build, and nothing half-written is offered.
    export = DataExport.objects.get(pk=export_id)
    assert export.status == ExportStatus.RUNNING and export.attempts == 1
    detail = client.get(f"{EXPORTS}{export_id}/").json()
    assert detail["completed"] is False and detail["file_url"] == ""
    assert client.get(f"{EXPORTS}{export_id}/download/").status_code == 404
    assert browser.get(f"/exports/{export_id}/download/").status_code == 404
    assert not list((media_root / "exports").iterdir())

    healthy = {"MEDIA_ROOT": str(media_root), "EXPORT_STALL_TIMEOUT": STALL_TIMEOUT}
    with running_worker(broker, data_dir=tmp_path / "w2", extra_env=healthy) as sender:
        # The reaper runs every minute from the scheduler; here it is sent once the build has
        # been silent for longer than the stall timeout.
        wait_until(
            partial(_silent_for_longer_than_the_stall_timeout, export_id),
            timeout=60,
            message="the build to be silent for long enough",
        )
        sender.send_task("exports.tasks.reap_stalled_exports")
        wait_until(
            lambda: _status(export_id) in (ExportStatus.COMPLETED, ExportStatus.FAILED),
            timeout=60,
            message="the export to be built again",
        )
        log = sender.log_path.read_text()

    export = DataExport.objects.get(pk=export_id)
    assert export.status == ExportStatus.COMPLETED, (export.error, log)
    logins = Event.objects.filter(action=EventAction.LOGIN).count()
    assert export.attempts == 2 and export.row_count == logins
    download = browser.get(f"/exports/{export_id}/download/")
    assert download.status_code == 200
    rows = csv_rows(b"".join(download.streaming_content).decode())
    assert len(rows) == logins >= 5 and {row["Action"] for row in rows} == {"login"}
