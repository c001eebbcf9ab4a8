"""Reads of the trail recorded (``reads_on``), a clock the tests move, and the export fixtures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auditlog import reads
from auditlog.models import Event
from tests.exports.conftest import media_root, request_export  # noqa: F401  (fixtures)

ADDRESS = "203.0.113.9"


@pytest.fixture(autouse=True)
def _reads_recorded(reads_on: None) -> None:
    """Every test here records reads."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """The reads' clock, frozen at a fixed instant; ``clock(seconds)`` moves it forward."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(reads, "clock", lambda: now[0])

    def forward(seconds: float) -> None:
        now[0] += seconds

    return forward


def read_events(**context: Any) -> list[Event]:
    """The read events (oldest first) whose context holds ``context``."""
    found = Event.objects.filter(app=reads.APP).order_by("created")
    return [event for event in found if context.items() <= event.context.items()]
