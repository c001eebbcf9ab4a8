from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from auditlog.live.hub import HUB


@pytest.fixture(autouse=True)
def _quick_heartbeats(settings: Any) -> None:
    """Keep-alive comments every half second, so that a test's reads never block for long."""
    settings.LIVE_HEARTBEAT = timedelta(seconds=0.5)


@pytest.fixture(autouse=True)
def _hub_stops() -> Iterator[None]:
    """The process's live hub watches the database from a thread: it stops before the test's
    database is flushed or dropped."""
    yield
    HUB.stop()
