"""The redaction step every log line passes before it is written: the project's one
redaction policy (:mod:`auditlog.sanitize`), applied to a line's message and fields."""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps

MASK = "********************"
# Before the apps are loaded (settings errors, start-up) the policy is not importable yet:
# these cover the credentials a start-up line could carry.
_EARLY_SECRETS = re.compile(
    r"((?:password|passwd|secret|token|key|authorization|cookie|sessionid)[\"']?\s*[=:]\s*[\"']?)"
    r"(?:Bearer\s+|Basic\s+|Token\s+)?[^\s,;&\"'}]+",
    re.IGNORECASE,
)
# The schema's fixed fields, first on every line in this order.
FIRST = ("timestamp", "level", "logger", "process", "event")
_KEEP = frozenset({"timestamp", "level", "logger", "process", "event_pk", "request_id"})


def _early_mask(value: str) -> str:
    return _EARLY_SECRETS.sub(lambda m: f"{m.group(1)}{MASK}", value)


def redact(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Mask every secret in the line: a field under a secret-looking name, and credentials
    (bearer headers, password hashes, passwords in URLs, secret query parameters) in any text."""
    if not apps.ready:
        return {
            key: _early_mask(value) if isinstance(value, str) else value
            for key, value in event_dict.items()
        }
    from auditlog.sanitize import is_secret_key, mask_string, sanitize

    clean: dict[str, Any] = {key: None for key in FIRST if key in event_dict}
    for key, value in event_dict.items():
        if key in _KEEP:
            clean[key] = value
        elif is_secret_key(key):
            clean[key] = MASK
        elif isinstance(value, str):
            clean[key] = _early_mask(mask_string(value))
        elif value is None or isinstance(value, bool | int | float):
            clean[key] = value
        else:
            try:
                clean[key] = sanitize(value)
            except Exception:  # a log line must never fail: fall back to its text
                clean[key] = _early_mask(mask_string(str(value)))
    return clean
