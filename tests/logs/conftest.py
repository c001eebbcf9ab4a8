"""Fixtures for the process logs: the lines this process logs, rendered by the real
processors, and a log directory of the test's own."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from logging.config import DictConfigurator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from project.loglevels import TRACE
from tests.notifications.conftest import webhook_server  # noqa: F401 - a webhook receiver


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every line logged during the test, at every level down to trace, as the JSON the
    log files hold (the settings' own formatter: redaction and all)."""
    formatter_config = dict(settings.LOGGING["formatters"]["json"])
    formatter = DictConfigurator({}).configure_custom(formatter_config)
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(TRACE)
    try:
        yield lambda: [json.loads(text) for text in sink.getvalue().splitlines() if text]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def log_dir(settings: Any, tmp_path: Path) -> Path:
    settings.LOG_DIR = tmp_path / "logs"
    settings.LOG_DIR.mkdir()
    return Path(settings.LOG_DIR)
