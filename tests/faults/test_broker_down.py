"""The broker down when an export is requested, end to end through the HTTP API of a real
gunicorn: a clear 503, the export marked failed with the reason, and nothing else lost
(events are still written); once the broker is back, exports are queued again."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from auditlog.models import Event
from exports.models import DataExport, ExportStatus
from tests.conftest import grant
from tests.servers import free_port, running_gunicorn, wait_for_port
from tests.workers import database_url

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def own_redis(port: int, data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis of this test's own (the shared one must stay up for everyone else)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    log = data_dir / f"redis-{port}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_export_requested_while_the_broker_is_down_fails_clearly_and_loses_nothing(
    auditor, make_token, tmp_path: Path
) -> None:
    exporter = grant(auditor, "exports.add_dataexport", "auditlog.add_event")
    headers = {"Authorization": f"Bearer {make_token(exporter)}"}
    port = free_port()
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    with running_gunicorn(database_url(), tmp_path, extra_env=broker) as base_url:
        with own_redis(port, tmp_path):
            up = requests.post(
                f"{base_url}/api/v3/events/events/export/", headers=headers, timeout=30
            )
        # The broker is gone now.
        down = requests.post(
            f"{base_url}/api/v3/events/events/export/", headers=headers, timeout=30
        )
        event = requests.post(
            f"{base_url}/api/v3/events/events/",
            json={"action": "custom_during_outage", "app": "tests"},
            headers=headers,
            timeout=30,
        )
        listed = requests.get(f"{base_url}/api/v3/reports/exports/", headers=headers, timeout=30)
        with own_redis(port, tmp_path):
            back = requests.post(
                f"{base_url}/api/v3/events/events/export/", headers=headers, timeout=30
            )

    assert up.status_code == 201, up.text
    assert down.status_code == 503, down.text
    assert down.headers["Content-Type"] == "application/json"
    assert "task queue is unavailable" in down.json()["detail"]
    # The refused request is on record, failed with the reason, for the requester to see.
    refused = DataExport.objects.exclude(pk__in=[up.json()["id"], back.json()["id"]]).get()
    assert refused.status == ExportStatus.FAILED
    assert "task queue is unavailable" in refused.error
    shown = {item["id"]: item for item in listed.json()["results"]}
    assert shown[str(refused.pk)]["status"] == "failed"
    assert "task queue is unavailable" in shown[str(refused.pk)]["error"]
    # Once the broker is back, exports are queued again.
    assert back.status_code == 201, back.text
    assert DataExport.objects.get(pk=back.json()["id"]).status == ExportStatus.QUEUED
    # Writes that do not need the broker go on.
    assert event.status_code == 201, event.text
    assert Event.objects.filter(pk=event.json()["pk"], action="custom_during_outage").exists()
