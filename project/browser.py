"""Launching Debian's Chromium headless through Playwright (browser tests and screenshots)."""

from __future__ import annotations

import os
import shutil
from typing import Any

# Flags for a closed network and a root user in a container: no sandbox, no background
# connections to Google's services, a fresh profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium).")
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
