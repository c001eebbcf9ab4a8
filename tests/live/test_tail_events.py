"""``manage.py tail_events``: since a time, search, formats, following, bad input."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from auditlog.models import Event
from auditlog.services import record_event
from tests.conftest import REPO
from tests.workers import database_url


def tail(*args: str) -> list[str]:
    out = StringIO()
    call_command("tail_events", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def events(db: None, django_capture_on_commit_callbacks: Any) -> list[Event]:
    with django_capture_on_commit_callbacks(execute=True):
        old = record_event(action="login", app="tests", context={"username": "ana"})
    Event.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=2))
    written = [old]
    for action, name in (("login", "bea"), ("logout", "bea"), ("login_failed", "cy")):
        with django_capture_on_commit_callbacks(execute=True):
            written.append(
                record_event(
                    action=action, app="tests", context={"username": name}, client_ip="10.0.0.7"
                )
            )
    return written


def test_events_since_a_time_in_commit_order_as_text_or_json(events: list[Event]) -> None:
    lines = tail("--since", "10m", "--search", 'app = "tests"')
    assert len(lines) == 3  # not the one from two hours ago
    assert ["login" in lines[0], "logout" in lines[1], "login_failed" in lines[2]] == [True] * 3
    assert "bea" in lines[0] and "10.0.0.7" in lines[0]
    assert len(tail("--since", "3h", "--search", 'app = "tests"')) == 4

    rows = [json.loads(line) for line in tail("--format", "json", "--search", 'action = "login"')]
    assert [row["pk"] for row in rows] == [str(events[1].pk)]
    assert rows[0]["context"]["username"] == "bea" and rows[0]["app"] == "tests"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", 'action = "login" and ('], "Invalid search query"),
        (["--search", "nosuchfield = 1"], "Invalid search query"),
        (["--since", "yesterday"], "--since 'yesterday' is not a duration"),
    ],
)
def test_bad_input_is_one_readable_line(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        tail(*args)
    assert "\n" not in str(raised.value)


@pytest.mark.django_db(transaction=True)
def test_follow_prints_new_matching_events_as_they_are_sealed() -> None:
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "manage.py",
        "tail_events",
        "--follow",
        "--search",
        'app = "followed"',
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        record_event(action="login", app="other", context={"username": "zed"})
        record_event(action="login", app="followed", context={"username": "ana"})
        [first] = read_lines(process, 1, timeout=30)
        # It is following by now: what comes next is printed as it is sealed.
        record_event(action="logout", app="followed", context={"username": "ana"})
        [second] = read_lines(process, 1, timeout=10)
        assert "login " in first and "ana" in first and "logout" in second
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "zed" not in out


def read_lines(process: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
    assert len(lines) == count, (lines, process.stderr.read() if process.poll() is not None else "")
    return lines
