"""A bad setting fails at start-up with a message that names the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EVENT_RETENTION", "24d", "EVENT_RETENTION: 24d is not in the correct format"),
        ("DEBUG", "maybe", "DEBUG: 'maybe' is not a boolean"),
        ("DB_CONN_MAX_AGE", "soon", "DB_CONN_MAX_AGE: 'soon' is not a whole number."),
        ("API_MAX_PAGE_SIZE", "0", "API_MAX_PAGE_SIZE: 0 is below the minimum of 1."),
        ("DATABASE_URL", "nonsense://x", "DATABASE_URL: Scheme 'nonsense://' is unknown."),
        ("AUDIT_CHAIN_KEY", "short", "AUDIT_CHAIN_KEY: use at least 32 characters"),
        ("AUDIT_CHAIN_CHECKPOINT_EVENTS", "0", "AUDIT_CHAIN_CHECKPOINT_EVENTS: 0 is below"),
        ("AUDIT_CHAIN_CHECKPOINT_INTERVAL", "1h", "AUDIT_CHAIN_CHECKPOINT_INTERVAL: 1h is not"),
        ("AUDIT_CHAIN_BACKDATE_BOUND", "minutes=-5", "AUDIT_CHAIN_BACKDATE_BOUND: minutes=-5 must"),
        ("DATABASE_REPLICA_URLS", "postgres://r/db", "DATABASE_REPLICA_URLS: replicas need a Po"),
        ("DATABASE_REPLICA_MAX_LAG", "5s", "DATABASE_REPLICA_MAX_LAG: 5s is not in the correct"),
        ("AUDIT_READS", "sometimes", "AUDIT_READS: 'sometimes' is not a boolean"),
        ("AUDIT_READS_WINDOW", "seconds=0.5", "AUDIT_READS_WINDOW: use at least one second"),
        ("CACHE_URL", "memcached://x", "CACHE_URL: use redis://host:6379/N or locmem://."),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(REPO / "var"), variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert message in result.stderr
    # The one readable line, not a traceback around it.
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Configuration error: {message}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["-m", "celery", "-A", "project", "worker"], 1),
        (["-m", "celery", "-A", "project", "beat"], 1),
        (["-c", "import project.asgi"], 1),
        # gunicorn stops on 4 ("the application failed to load") instead of retrying forever.
        (["-m", "gunicorn", "project.wsgi", "--bind=127.0.0.1:0", "--workers=1"], 4),
    ],
    ids=["worker", "scheduler", "asgi", "wsgi"],
)
def test_every_entry_point_prints_the_line_only(command: list[str], status: int) -> None:
    result = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(REPO / "var"), "DEBUG": "maybe"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == status
    line = "Configuration error: DEBUG: 'maybe' is not a boolean (use true or false)."
    assert result.stderr.count(line) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_the_env_example_lists_every_variable_the_settings_read() -> None:
    import re

    read = set(
        re.findall(r'env_\w+\(\s*"([A-Z_]+)"', (REPO / "project" / "settings.py").read_text())
    )
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert read, "no variables found"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def test_the_embedded_broker_connects_without_a_warning(tmp_path: Path) -> None:
    """kombu used to warn "No hostname was supplied" on every connection to filesystem://."""
    send = "from auditlog.tasks import seal_events; seal_events.delay()"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", send],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": str(tmp_path),
            "CELERY_BROKER_URL": "filesystem://",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "broker" / "queue").iterdir()), "no task was queued"
    assert "No hostname" not in result.stderr
    assert "WARNING" not in result.stderr
