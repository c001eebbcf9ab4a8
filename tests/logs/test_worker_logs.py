"""The worker logs in the web's schema to its own file; a task's lines carry its id and name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workers import running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_task_s_lines_carry_its_id_and_name_in_the_worker_file(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    env = {"LOG_FILES": "true", "LOG_DIR": str(log_dir), "LOG_LEVEL": "trace"}
    with running_worker("filesystem://", data_dir=tmp_path, extra_env=env) as sender:
        result = sender.send_task("auditlog.tasks.seal_events")
        worker_log = log_dir / "worker.log"
        wait_until(
            lambda: worker_log.exists() and "task_succeeded" in worker_log.read_text(),
            message="the task's lines in worker.log",
        )
    lines = [json.loads(text) for text in worker_log.read_text().splitlines()]
    assert {line["process"] for line in lines} == {"worker"}
    task_lines = [line for line in lines if line.get("task_id") == result.id]
    assert {"task_started", "task_succeeded"} <= {line["event"] for line in task_lines}
    assert {line.get("task_name") for line in task_lines} == {"auditlog.tasks.seal_events"}
    # trace: the sealing steps of the task, with its id
    assert any(line["logger"] == "auditlog.chain.sealing" for line in task_lines)
    # The console (what honcho shows) has the same JSON lines.
    console = [text for text in sender.log_path.read_text().splitlines() if text.startswith("{")]
    assert any(json.loads(text).get("task_id") == result.id for text in console)
