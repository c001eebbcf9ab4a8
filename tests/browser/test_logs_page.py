"""System > Logs in a real browser: Follow appends the new lines of the files without a reload,
under the strict CSP (the page's script is a static file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.browser.conftest import log_in


def _line(stamp: str, event: str, **fields: Any) -> str:
    return json.dumps(
        {
            "timestamp": f"2026-12-07T10:00:{stamp}Z",
            "level": "info",
            "logger": "auditlog.services",
            "process": "web",
            "event": event,
            **fields,
        }
    )


def test_follow_appends_new_lines_without_a_reload(
    page: Any, admin: Any, settings: Any, tmp_path: Path
) -> None:
    settings.LOG_DIR = tmp_path
    log = tmp_path / "web.log"
    log.write_text(_line("01.000000", "first line") + "\n")
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    log_in(page)
    page.goto("/system/logs/")
    assert page.locator("[data-log-rows] tr").all_inner_texts()[0].count("first line") == 1
    page.check("[data-follow]")
    with log.open("a") as sink:
        sink.write(_line("02.000000", "followed line", password="hunter2-hunter2") + "\n")
    page.wait_for_selector("tr[data-timestamp='2026-12-07T10:00:02.000000Z']")
    rows = page.locator("[data-log-rows] tr").all_inner_texts()
    assert len(rows) == 2 and "followed line" in rows[1]
    assert "hunter2" not in rows[1]
    assert problems == []
