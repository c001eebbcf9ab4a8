"""LOG_LEVEL, LOG_LEVELS, LOG_FORMAT: read at start-up, a bad value stops it with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from logs.setup import process_role
from project.loglevels import TRACE, parse_level, parse_logger_levels
from tests.conftest import REPO


def _check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: 'verbose' is not a log level (use trace, debug,"),
        ("LOG_LEVELS", "auditlog.capture=loud", "LOG_LEVELS (auditlog.capture): 'loud' is not"),
        ("LOG_LEVELS", "auditlog.capture", "LOG_LEVELS: 'auditlog.capture' is not logger=level"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: 'xml' is not a log format (use json or text)."),
        ("LOG_PROCESS", "db", "LOG_PROCESS: 'db' is not a process"),
    ],
)
def test_a_bad_log_setting_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = _check(tmp_path, **{variable: value})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Configuration error: {message}")


def test_trace_warns_at_start_up_in_json_lines(tmp_path: Path) -> None:
    result = _check(tmp_path, LOG_LEVEL="TRACE", LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    [warning] = [line for line in lines if line["logger"] == "logs"]
    assert warning["level"] == "warning"
    assert "trace logging is on" in warning["event"]
    assert warning["process"] == "web"


def test_a_quiet_start_says_nothing(tmp_path: Path) -> None:
    result = _check(tmp_path, LOG_LEVEL="Warning")
    assert result.returncode == 0
    assert result.stderr == ""


def test_levels_are_case_insensitive_and_trace_is_below_debug() -> None:
    assert parse_level("LOG_LEVEL", " Trace ") == TRACE == 5
    assert parse_logger_levels("LOG_LEVELS", "auditlog.capture=trace, notifications=DEBUG") == {
        "auditlog.capture": 5,
        "notifications": 10,
    }
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL: 'critical'"):
        parse_level("LOG_LEVEL", "critical")


def test_the_process_role_comes_from_the_command_line() -> None:
    assert process_role([".venv/bin/celery", "-A", "project", "worker"]) == "worker"
    assert process_role(["/x/celery", "-A", "project", "beat"]) == "scheduler"
    main = "/venv/lib/python3.11/site-packages/celery/__main__.py"
    assert process_role([main, "-A", "project", "beat"]) == "scheduler"
    assert process_role(["manage.py", "runserver"]) == "web"
    assert process_role([".venv/bin/gunicorn", "project.wsgi"]) == "web"
