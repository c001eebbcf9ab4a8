"""End to end with a real Celery worker process on Redis: request an export through the API,
wait for the worker to build it, download it through the notification's link."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from auditlog.models import EventAction
from auditlog.services import record_event
from exports.models import DataExport, ExportStatus
from notifications.models import Notification
from tests.conftest import grant
from tests.exports.conftest import EVENTS, celery_sends_to, csv_rows, export_url
from tests.workers import redis_url_or_skip, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_builds_an_export_that_the_link_downloads(
    api_as, auditor, media_root: Path, tmp_path: Path
) -> None:
    broker = redis_url_or_skip()
    exporter = grant(auditor, "exports.add_dataexport")
    record_event(action=EventAction.LOGIN, app="tests", context={"username": "ana"})
    record_event(action=EventAction.LOGOUT, app="tests", context={"username": "ana"})
    client = api_as(exporter)

    with running_worker(
        broker, data_dir=tmp_path, extra_env={"MEDIA_ROOT": str(media_root)}
    ) as sender:
        with celery_sends_to(broker, queue=sender.conf.task_default_queue):
            response = client.post(export_url(EVENTS, {"actions": "login"}))
        assert response.status_code == 201, response.content
        export_id = response.json()["id"]

        def finished() -> bool:
            return DataExport.objects.filter(
                pk=export_id, status__in=(ExportStatus.COMPLETED, ExportStatus.FAILED)
            ).exists()

        def logged() -> bool:  # the worker logs the task's end just after its commit
            failed = DataExport.objects.filter(pk=export_id, status=ExportStatus.FAILED).exists()
            return failed or "succeeded" in sender.log_path.read_text()

        try:
            wait_until(finished, timeout=60, message="the worker to build the export")
            wait_until(logged, timeout=10, message="the worker to log the task's end")
        finally:
            log = sender.log_path.read_text()
            print(log)  # shown when the test fails

    export = DataExport.objects.get(pk=export_id)
    assert export.status == ExportStatus.COMPLETED, (export.error, log)
    assert export.row_count == 1
    assert "exports.tasks.generate_export" in log and "succeeded" in log

    notification = Notification.objects.get(user=exporter, event__action=EventAction.EXPORT_READY)
    browser = Client()
    browser.force_login(exporter)
    download = browser.get(notification.hyperlink)
    assert download.status_code == 200
    rows = csv_rows(b"".join(download.streaming_content).decode())
    assert [(row["Action"], row["Username"]) for row in rows] == [("login", "")]
