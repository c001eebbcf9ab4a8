"""ArcSight Common Event Format (CEF 0), one line per event:

``CEF:0|auditlog|auditlog-server|<version>|<action>|<Action label>|<severity>|<extension>``

In the header ``\\`` and ``|`` are escaped with a backslash (a line break, which a header may
not hold, becomes a space); in the extension ``\\`` and ``=`` are escaped and line breaks are
written ``\\n`` / ``\\r``, so a record is always one line. Severity (0-10) follows the action:
1 informational, 3 low, 5 medium, 8 high (see ``ACTION_SEVERITY`` in :mod:`.base`).

Extension keys are CEF's own where one fits (``rt``, ``externalId``, ``act``, ``suser``,
``suid``, ``src``/``c6a2``, ``slat``/``slong``, ``requestMethod``, ``request``,
``requestClientApplication``, ``outcome``, ``msg``); the chain travels in labelled custom
fields: ``cn1`` sequence, ``cs1`` link hash, ``cs2`` previous hash, ``cn2`` previous
sequence; ``cs3`` the app, ``cs4`` the context as JSON, ``cs5`` the user's email.
"""

from __future__ import annotations

import ipaddress
from importlib import metadata
from typing import Any

from streams.formats.base import (
    StreamRecord,
    action_severity,
    as_object,
    compact_json,
    epoch_millis,
    user_pk,
)

VENDOR = "auditlog"
PRODUCT = "auditlog-server"
# OCSF severity_id -> CEF severity (0-3 low, 4-6 medium, 7-8 high, 9-10 very high).
CEF_SEVERITY = {1: 1, 2: 3, 3: 5, 4: 8}
OUTCOMES = {"login": "success", "logout": "success", "login_failed": "failure"}


def _version() -> str:
    try:
        return metadata.version(PRODUCT)
    except metadata.PackageNotFoundError:
        return "unknown"


def escape_header(value: str) -> str:
    """A header field: ``\\`` and ``|`` escaped, line breaks made spaces."""
    text = value.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(value: str) -> str:
    """An extension value: ``\\`` and ``=`` escaped, line breaks written ``\\n`` / ``\\r``."""
    text = value.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def action_label(action: str) -> str:
    """``login_failed`` -> ``Login Failed`` (authentik's label for an action)."""
    return " ".join(word.capitalize() for word in action.split("_") if word) or action


def _address(client_ip: str | None) -> list[tuple[str, Any]]:
    if not client_ip:
        return []
    try:
        version = ipaddress.ip_address(client_ip).version
    except ValueError:
        return []
    if version == 4:
        return [("src", client_ip)]
    return [("c6a2", client_ip), ("c6a2Label", "Source IPv6 Address")]


def extension_fields(record: StreamRecord) -> list[tuple[str, Any]]:
    """The extension's ``(key, value)`` pairs in order; None values are left out."""
    event: dict[str, Any] = dict(record.event)
    action = str(event.get("action") or "")
    user = as_object(event.get("user"))
    context = as_object(event.get("context"))
    request = as_object(context.get("http_request"))
    geo = as_object(context.get("geo"))
    message = context.get("message")
    fields: list[tuple[str, Any]] = [
        ("rt", epoch_millis(event.get("created"))),
        ("externalId", event.get("pk")),
        ("act", action),
        ("outcome", OUTCOMES.get(action)),
        ("suser", user.get("username") or context.get("username")),
        ("suid", user_pk(user)),
        *_address(event.get("client_ip")),
        ("slat", geo.get("lat")),
        ("slong", geo.get("long")),
        ("requestMethod", request.get("method")),
        ("request", request.get("path")),
        ("requestClientApplication", request.get("user_agent")),
        ("msg", message if isinstance(message, str) else None),
        ("cn1", record.sequence),
        ("cn1Label", "chainSequence"),
        ("cs1", record.chain_hash),
        ("cs1Label", "chainHash"),
        ("cs2", record.prev_hash),
        ("cs2Label", "chainPrevHash"),
        ("cn2", record.previous_sequence),
        ("cn2Label", "previousSequence" if record.previous_sequence is not None else None),
        ("cs3", event.get("app")),
        ("cs3Label", "app"),
        ("cs4", compact_json(context) if context else None),
        ("cs4Label", "context" if context else None),
        ("cs5", user.get("email") or None),
        ("cs5Label", "userEmail" if user.get("email") else None),
    ]
    return [(key, value) for key, value in fields if value is not None and value != ""]


def cef_line(record: StreamRecord) -> str:
    """The CEF line of ``record``."""
    action = str(record.event.get("action") or "")
    header = [
        VENDOR,
        PRODUCT,
        _version(),
        action,
        action_label(action),
        str(CEF_SEVERITY[action_severity(action)]),
    ]
    extension = " ".join(
        f"{key}={escape_extension(str(value))}" for key, value in extension_fields(record)
    )
    return "CEF:0|" + "|".join(escape_header(part) for part in header) + "|" + extension


class CefFormat:
    """ArcSight Common Event Format, version 0."""

    name = "cef"
    label = "Common Event Format (CEF)"
    content_type = "text/plain"

    def encode(self, record: StreamRecord) -> str:
        return cef_line(record)
