"""Fault-test fixtures: export files in a folder of the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "exports").mkdir(parents=True)
    settings.MEDIA_ROOT = str(root)
    return root
