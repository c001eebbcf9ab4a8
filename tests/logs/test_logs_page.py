"""System > Logs and ``manage.py logs`` over log files: filters, Follow, refusals, masking."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from directory.models import User
from tests.conftest import REPO, grant

pytestmark = pytest.mark.django_db
LEAKED = "Bearer abcdefghijklmnopqrstuvwxyz012345"


def _line(stamp: str, level: str, process: str, event: str, **fields: Any) -> str:
    return json.dumps(
        {
            "timestamp": f"2026-12-07T10:00:{stamp}Z",
            "level": level,
            "logger": fields.pop("logger", "auditlog.services"),
            "process": process,
            "event": event,
            **fields,
        }
    )


@pytest.fixture
def files(log_dir: Path) -> Path:
    (log_dir / "web.log.1").write_text(_line("00.000001", "info", "web", "oldest web line") + "\n")
    (log_dir / "web.log").write_text(
        "\n".join(
            [
                _line("01.000000", "debug", "web", "a debug line", request_id="req-1"),
                _line("03.000000", "warning", "web", "a warning", request_id="req-2"),
                _line("05.000000", "error", "web", f"leaked Authorization: {LEAKED}"),
                "not json: ignored",
            ]
        )
        + "\n"
    )
    (log_dir / "worker.log").write_text(
        _line("02.000000", "info", "worker", "task line", task_id="task-9", request_id="req-1")
        + "\n"
        + _line("04.000000", "trace", "worker", "seal step", logger="auditlog.chain.sealing")
        + "\n"
    )
    return log_dir


def _events(client: Client, **params: str) -> list[str]:
    response = client.get("/system/logs/lines/", params)
    assert response.status_code == 200, response.content
    return [line["event"] for line in response.json()["lines"]]


def test_the_page_shows_every_process_merged_in_time_order(files: Path, admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/system/logs/")
    assert page.status_code == 200
    body = page.content.decode()
    order = ["oldest web line", "a debug line", "task line", "a warning", "leaked"]
    assert [body.index(text) for text in order] == sorted(body.index(text) for text in order)
    assert LEAKED not in body  # masked when shown, even if a file held it
    assert 'href="/system/logs/?request_id=req-2"' in body  # a line leads to its request's
    assert 'href="/system/logs/"' in body  # in the navigation, under System


def test_level_process_logger_and_request_id_filters(files: Path, admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    assert _events(client, level="warning") == ["a warning", _events(client, level="error")[0]]
    assert _events(client, level="ERROR")[0].startswith("leaked Authorization: ")
    assert _events(client, process="worker") == ["task line", "seal step"]
    assert _events(client, logger="auditlog.chain") == ["seal step"]
    assert _events(client, request_id="req-1") == ["a debug line", "task line"]
    assert _events(client, request_id="task-9") == ["task line"]


def test_follow_returns_only_the_lines_after_the_cursor(files: Path, admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    answer = client.get("/system/logs/lines/", {"after": "2026-12-07T10:00:03.000000Z"}).json()
    assert [line["event"] for line in answer["lines"]] == ["seal step", answer["lines"][1]["event"]]
    assert answer["cursor"] == "2026-12-07T10:00:05.000000Z"
    assert LEAKED not in json.dumps(answer)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"level": "loud"}, "level: 'loud' is not a level"),
        ({"process": "db"}, "process: 'db' is not a process"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither a duration"),
        ({"after": "1h"}, "after: '1h' is not the timestamp of a line."),
    ],
)
def test_bad_filters_are_refused_with_a_message(
    files: Path, admin_user: User, params: dict[str, str], message: str
) -> None:
    client = Client()
    client.force_login(admin_user)
    answer = client.get("/system/logs/lines/", params)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    page = client.get("/system/logs/", params)
    assert page.status_code == 400
    assert message.split("'")[0] in page.content.decode()


def test_the_page_is_refused_to_everyone_but_administrators(
    files: Path, nobody: User, auditor: User
) -> None:
    assert Client().get("/system/logs/").status_code == 302  # to the login page
    assert Client().get("/system/logs/lines/").status_code == 302
    for user in (nobody, auditor):
        client = Client()
        client.force_login(user)
        page = client.get("/system/logs/")
        assert page.status_code == 403
        assert "logs.view_process_logs" in page.content.decode()
        lines = client.get("/system/logs/lines/")
        assert lines.status_code == 403
        assert "logs.view_process_logs" in lines.json()["detail"]
        assert 'href="/system/logs/"' not in client.get("/").content.decode()
    allowed = Client()
    allowed.force_login(grant(nobody, "logs.view_process_logs"))
    assert allowed.get("/system/logs/").status_code == 200


def test_a_line_links_to_the_event_it_wrote(log_dir: Path, admin_user: User) -> None:
    pk = "0b5a3c52-9d7e-4f57-a2c5-3f0e0e0d1c2b"
    (log_dir / "web.log").write_text(
        _line("01.0", "info", "web", "event recorded", event_pk=pk)
        + "\n"
        + _line("02.0", "info", "web", "event recorded", event_pk="not-a-uuid")
        + "\n"
    )
    client = Client()
    client.force_login(admin_user)
    page = client.get("/system/logs/")
    assert page.status_code == 200
    assert f'href="/events/{pk}/"' in page.content.decode()
    assert "not-a-uuid" in page.content.decode()


def test_the_event_detail_links_to_its_request_lines(admin_user: User) -> None:
    from auditlog.services import record_event

    event = record_event(
        action="custom_x", app="tests", context={"http_request": {"request_id": "abc123"}}
    )
    client = Client()
    client.force_login(admin_user)
    body = client.get(f"/events/{event.pk}/").content.decode()
    assert 'href="/system/logs/?request_id=abc123"' in body


def test_the_command_filters_and_prints_text_or_json(files: Path) -> None:
    out = StringIO()
    call_command("logs", level="warning", stdout=out)
    text = out.getvalue().splitlines()
    assert len(text) == 2
    assert text[0].startswith("2026-12-07T10:00:03.000000Z WARNING [web] auditlog.services: ")
    assert "request_id=req-2" in text[0]
    assert LEAKED not in out.getvalue()
    out = StringIO()
    call_command("logs", process="worker", since="2026-12-07T10:00:03Z", format="json", stdout=out)
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["seal step"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": "loud"}, "level: 'loud' is not a level"),
        ({"since": "a while"}, "since: 'a while' is neither"),
        ({"process": "db"}, "process: 'db' is not a process"),
    ],
)
def test_the_command_refuses_bad_arguments(files: Path, options: dict[str, str], message: str):
    with pytest.raises(CommandError, match=message):
        call_command("logs", **options)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "logs", "--level", "loud"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: level: 'loud' is not a level (use trace, debug, info, warning or error)."
    ]


def test_the_command_follows_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(_line("01.000000", "info", "worker", "before") + "\n")
    follower = subprocess.Popen(
        [sys.executable, "manage.py", "logs", "--follow", "--format", "json"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "LOG_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["event"] == "before"
        with log.open("a") as sink:
            sink.write(_line("02.000000", "info", "worker", f"after {LEAKED}") + "\n")
        after = json.loads(follower.stdout.readline())
        assert after["event"].startswith("after ") and LEAKED not in after["event"]
    finally:
        follower.terminate()
        follower.wait(timeout=10)
