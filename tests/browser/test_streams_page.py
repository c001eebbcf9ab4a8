"""System > Streams in a real browser: an administrator adds a destination, sees a field
refused with its message, then pauses and resumes it from the list."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from streams.models import Destination
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_adding_pausing_and_resuming_a_destination(
    page: Any, admin: Any, tmp_path: Path, settings: Any
) -> None:
    settings.STREAMS_FILE_ROOTS = [str(tmp_path)]
    log_in(page)
    page.goto("/")
    page.click("nav >> text=Streams")
    page.wait_for_selector("text=No destinations")
    page.click("text=New destination")
    page.fill("#id_name", "vector")
    page.select_option("#id_transport", "file")
    page.fill("#id_path", "relative/out.jsonl")
    page.click('button:has-text("Save")')
    page.wait_for_selector("text=The file path must be absolute")
    page.fill("#id_path", str(tmp_path / "out.jsonl"))
    page.click('button:has-text("Save")')
    row = page.locator('[data-stream="vector"]')
    row.wait_for()
    if shots := os.environ.get("STREAMS_SCREENSHOTS"):
        page.screenshot(path=f"{shots}/streams-list.png", full_page=True)
    row.locator("text=Pause").click()
    page.locator('[data-stream="vector"] >> text=paused').wait_for()
    assert Destination.objects.get(name="vector").paused
    page.locator('[data-stream="vector"] >> text=Resume').click()
    page.locator('[data-stream="vector"] >> text=Pause').wait_for()
    assert not Destination.objects.get(name="vector").paused
