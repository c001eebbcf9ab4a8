"""What an event records about an exception (authentik's shape)."""

from __future__ import annotations

import traceback
from typing import Any


def exception_to_dict(exc: BaseException) -> list[dict[str, Any]]:
    """The exception chain as data: type, value and frames of each exception."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(found) < 10:
        seen.add(id(current))
        frames = [
            {"filename": frame.filename, "lineno": frame.lineno, "name": frame.name}
            for frame in traceback.extract_tb(current.__traceback__)[-50:]
        ]
        found.append(
            {
                "exc_type": type(current).__name__,
                "exc_value": str(current),
                "syntax_error": None,
                "is_cause": current.__cause__ is not None,
                "frames": frames,
            }
        )
        current = current.__cause__ or current.__context__
    return found
