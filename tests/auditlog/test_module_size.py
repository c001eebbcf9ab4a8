"""Modules of the event core stay short enough to read, unless they say why they are not."""

from __future__ import annotations

from tests.conftest import REPO

LIMIT = 500
NOTE = "Longer than 500 lines on purpose:"


def test_no_module_in_the_event_core_is_over_500_lines_without_a_note() -> None:
    too_long = []
    for path in sorted((REPO / "auditlog").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        if text.count("\n") > LIMIT and NOTE not in text:
            too_long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert too_long == []
