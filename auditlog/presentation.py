"""How events read on a page: colours, geo lines, diff rows, pretty JSON.

One place decides each of these, so an action has the same colour in the chart, the table and
the legend, and a diff reads the same on the log and on an object's history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pycountry

from auditlog.models import EventAction

# Fixed colours for the actions people look for most; the rest get a stable palette colour.
ACTION_COLORS: dict[str, str] = {
    EventAction.LOGIN: "#4cb140",
    EventAction.LOGIN_FAILED: "#ec7a08",
    "login_blocked": "#c9190b",  # newer than the target release: stored events only
    EventAction.LOGOUT: "#73bcf7",
    EventAction.AUTHORIZE_APPLICATION: "#8481dd",
    EventAction.MODEL_CREATED: "#38812f",
    EventAction.MODEL_UPDATED: "#0066cc",
    EventAction.MODEL_DELETED: "#a30000",
    EventAction.PASSWORD_SET: "#f4c145",
    "user_created": "#5ba352",  # newer than the target release: stored events only
    EventAction.SUSPICIOUS_REQUEST: "#7d1007",
    EventAction.SYSTEM_EXCEPTION: "#470000",
    EventAction.CONFIGURATION_ERROR: "#c58c00",
    EventAction.SECRET_VIEW: "#a18fff",
    EventAction.EXPORT_READY: "#009596",
    EventAction.EMAIL_SENT: "#2b9af3",
    EventAction.POLICY_EXECUTION: "#6a6e73",
}
_PALETTE = ("#005f60", "#6753ac", "#ec7a08", "#3e8635", "#004b95", "#8f4700", "#40199a", "#1e4f18")

CONTINENT_NAMES = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}


def action_color(action: str) -> str:
    if action in ACTION_COLORS:
        return ACTION_COLORS[action]
    digest = int(hashlib.sha256(action.encode()).hexdigest()[:8], 16)
    return _PALETTE[digest % len(_PALETTE)]


def all_action_colors() -> dict[str, str]:
    return {action: action_color(action) for action in EventAction.values}


def action_label(action: str) -> str:
    try:
        return str(EventAction(action).label)
    except ValueError:
        return action


def country_name(code: str | None) -> str:
    if not code:
        return ""
    country = pycountry.countries.get(alpha_2=code.upper())
    return str(getattr(country, "common_name", None) or country.name) if country else code


def geo_line(context: dict[str, Any]) -> str:
    """ "City, Country, Continent" with the empty parts left out."""
    geo = context.get("geo") if isinstance(context, dict) else None
    if not isinstance(geo, dict):
        return ""
    parts = [
        str(geo.get("city") or ""),
        country_name(geo.get("country")),
        CONTINENT_NAMES.get(str(geo.get("continent") or ""), str(geo.get("continent") or "")),
    ]
    return ", ".join(part for part in parts if part)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class DiffRow:
    key: str
    previous: str
    new: str
    changes: tuple[str, ...]  # m2m: "Added ID 5", "Removed ID 5", "Cleared"


def diff_rows(context: dict[str, Any]) -> list[DiffRow]:
    """The Changes table of a model event: Key / Previous value / New value."""
    diff = context.get("diff") if isinstance(context, dict) else None
    if not isinstance(diff, dict):
        return []
    rows = []
    for key, change in sorted(diff.items()):
        if not isinstance(change, dict):
            rows.append(DiffRow(key, "-", pretty(change), ()))
            continue
        if {"add", "remove", "clear"} & set(change):
            items: list[str] = [f"Added ID {pk}" for pk in change.get("add") or []]
            items += [f"Removed ID {pk}" for pk in change.get("remove") or []]
            if change.get("clear"):
                items.append("Cleared")
            rows.append(DiffRow(key, "-", "", tuple(items)))
            continue
        previous = change.get("previous_value")
        rows.append(
            DiffRow(
                key,
                pretty(previous) if previous not in (None, "", {}, []) else "-",
                pretty(change.get("new_value")),
                (),
            )
        )
    return rows


def user_line(user: dict[str, Any]) -> dict[str, Any]:
    """How the User column reads: name, link target, and the on-behalf-of line."""
    if not user:
        return {"name": "-", "pk": None, "note": ""}
    if user.get("is_anonymous"):
        return {"name": "Anonymous user", "pk": None, "note": ""}
    note = ""
    if isinstance(user.get("on_behalf_of"), dict):
        note = f"On behalf of {user['on_behalf_of'].get('username', '?')}"
    elif isinstance(user.get("authenticated_as"), dict):
        note = f"Authenticated as {user['authenticated_as'].get('username', '?')}"
    return {"name": user.get("username", "-"), "pk": user.get("pk"), "note": note}
