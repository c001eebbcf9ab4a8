"""A storage for fault tests: storing a file stalls (as if the disk hung) until the process is
killed, after telling the test which process to kill."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage


class StallingStorage(FileSystemStorage):
    def _save(self, name: str, content: Any) -> str:
        marker = Path(os.environ["STALL_MARKER"])
        marker.write_text(str(os.getpid()))
        time.sleep(300)  # killed long before
        raise RuntimeError("the test should have killed this process")
