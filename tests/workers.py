"""Start a real Celery worker process against the test database, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery
from django.db import connection

from tests.conftest import REPO

REDIS_URL = "redis://127.0.0.1:6379/14"


def redis_url_or_skip() -> str:
    """The test Redis URL; skips the test when Redis is down, unless CI requires it."""
    import pytest
    import redis

    try:
        if redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping():
            return REDIS_URL
    except redis.RedisError:
        pass
    if os.environ.get("REQUIRE_REDIS"):
        pytest.fail("Redis is required here (REQUIRE_REDIS) but not running on 127.0.0.1:6379")
    pytest.skip("Redis is not running on 127.0.0.1:6379")


def database_url() -> str:
    """The URL of the test database this process uses (so a worker sees the same rows)."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@contextmanager
def running_worker(
    broker_url: str,
    *,
    beat: bool = False,
    data_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Celery]:
    """Run ``celery -A project worker`` until the block ends; yield an app that sends to it."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    if data_dir is not None:
        env["DATA_DIR"] = str(data_dir)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "project",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-Q",
        queue,
    ]
    if beat:
        schedule = (data_dir or Path("/tmp")) / f"beat-{queue}"
        command += ["--beat", f"--schedule={schedule}"]
    log = (data_dir or Path("/tmp")) / f"worker-{queue}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(log, "ready.", process)
        # Not the current app: shared tasks elsewhere in the test run must keep using the
        # project's app (eager in tests), not this sender.
        sender = Celery("test-sender", broker=broker_url, set_as_current=False)
        sender.conf.task_default_queue = queue
        if broker_url.startswith("filesystem://"):
            broker = Path(env["DATA_DIR"]) / "broker"
            sender.conf.broker_transport_options = {
                "data_folder_in": str(broker / "queue"),
                "data_folder_out": str(broker / "queue"),
                "control_folder": str(broker / "control"),
            }
        sender.log_path = log  # type: ignore[attr-defined]
        yield sender
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(log: Path, marker: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_text():
            return
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited early:\n{log.read_text()}")
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not become ready:\n{log.read_text()}")


def wait_until(condition: Any, timeout: float = 30, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {message}")
