"""How events read on a page: colours, geo lines, diff rows, pretty JSON.

One place decides each of these, so an action has the same colour in the chart, the table and
the legend, and a diff reads the same on the log and on an object's history.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pycountry

from auditlog.models import EventAction

# Kelly's colours of maximum contrast (and a cyan): any two differ by a CIE76 distance of at
# least 15, so neighbouring bars and legend entries never look alike. The actions seen most
# come first and get a colour of their own; the rare rest reuse the palette, in order.
PALETTE = (
    "#4cb140", "#f38400", "#a1caf1", "#008856", "#0067a5", "#c9190b", "#f3c300", "#875692",
    "#848482", "#e68fac", "#882d17", "#604e97", "#e25822", "#17becf", "#8db600", "#c2b280",
    "#654522", "#b3446c", "#222222", "#dcd300", "#f99379", "#2b3d26",
)  # fmt: skip
_BY_FREQUENCY = (
    EventAction.LOGIN,
    EventAction.LOGIN_FAILED,
    EventAction.LOGOUT,
    EventAction.MODEL_CREATED,
    EventAction.MODEL_UPDATED,
    EventAction.MODEL_DELETED,
    EventAction.PASSWORD_SET,
    EventAction.AUTHORIZE_APPLICATION,
    EventAction.SYSTEM_TASK_EXECUTION,
    EventAction.USER_WRITE,
    EventAction.SUSPICIOUS_REQUEST,
    EventAction.SECRET_VIEW,
    EventAction.CONFIGURATION_ERROR,
    EventAction.EMAIL_SENT,
    EventAction.EXPORT_READY,
    EventAction.POLICY_EXECUTION,
    EventAction.FLOW_EXECUTION,
    EventAction.SYSTEM_TASK_EXCEPTION,
    EventAction.SYSTEM_EXCEPTION,
    EventAction.SECRET_ROTATE,
    EventAction.USER_OFFBOARDED,
    EventAction.CONFIGURATION_WARNING,
)
_ORDERED = (
    *_BY_FREQUENCY,
    *(action for action in EventAction.values if action not in _BY_FREQUENCY),
)
ACTION_COLORS: dict[str, str] = {
    action: PALETTE[index % len(PALETTE)] for index, action in enumerate(_ORDERED)
}
# Newer than the target release (stored events only): the colour of what the API answers.
ACTION_COLORS["login_blocked"] = ACTION_COLORS[EventAction.LOGIN_FAILED]
ACTION_COLORS["user_created"] = ACTION_COLORS[EventAction.MODEL_CREATED]

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
    return PALETTE[digest % len(PALETTE)]


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
class Part:
    """A piece of a value in the Changes table; ``changed`` pieces are highlighted."""

    text: str
    changed: bool = False


@dataclass(frozen=True)
class DiffRow:
    key: str
    previous: str
    new: str
    changes: tuple[str, ...]  # m2m: "Added ana (ID 5)", "Removed ID 5", "Cleared"
    previous_parts: tuple[Part, ...] = ()
    new_parts: tuple[Part, ...] = ()


WORDS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def _merge(parts: list[Part]) -> tuple[Part, ...]:
    merged: list[Part] = []
    for part in parts:
        if merged and merged[-1].changed == part.changed:
            merged[-1] = Part(merged[-1].text + part.text, part.changed)
        elif part.text:
            merged.append(part)
    return tuple(merged)


def highlight(previous: str, new: str, *, by_line: bool) -> tuple[tuple[Part, ...], ...]:
    """Both texts cut into pieces, the pieces that differ marked: word by word (strings) or
    line by line (a dict's keys, a list's items, as pretty JSON)."""
    split = (lambda text: text.splitlines(keepends=True)) if by_line else WORDS.findall
    old_tokens, new_tokens = split(previous), split(new)
    matcher = difflib.SequenceMatcher(a=old_tokens, b=new_tokens, autojunk=False)
    old_parts: list[Part] = []
    new_parts: list[Part] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        same = tag == "equal"
        old_parts.append(Part("".join(old_tokens[i1:i2]), not same))
        new_parts.append(Part("".join(new_tokens[j1:j2]), not same))
    return _merge(old_parts), _merge(new_parts)


def _membership(change: dict[str, Any]) -> tuple[str, ...]:
    """An m2m change read by name (stored with the event since names were kept), else by ID."""
    stored = change.get("names")
    names: dict[str, Any] = stored if isinstance(stored, dict) else {}

    def who(pk: Any) -> str:
        name = names.get(str(pk))
        return f"{name} (ID {pk})" if name else f"ID {pk}"

    items = [f"Added {who(pk)}" for pk in change.get("add") or []]
    items += [f"Removed {who(pk)}" for pk in change.get("remove") or []]
    if change.get("clear"):
        removed = sorted(str(name) for name in names.values())
        items.append(f"Cleared ({', '.join(removed)})" if removed else "Cleared")
    return tuple(items)


def diff_rows(context: dict[str, Any]) -> list[DiffRow]:
    """The Changes table of a model event: Key / Previous value / New value, with what changed
    inside each value highlighted; a value that did not change (an older event may hold one)
    is left out."""
    diff = context.get("diff") if isinstance(context, dict) else None
    if not isinstance(diff, dict):
        return []
    rows = []
    for key, change in sorted(diff.items()):
        if not isinstance(change, dict):
            rows.append(DiffRow(key, "-", pretty(change), ()))
            continue
        if {"add", "remove", "clear"} & set(change):
            rows.append(DiffRow(key, "-", "", _membership(change)))
            continue
        previous, new = change.get("previous_value"), change.get("new_value")
        if previous == new and "previous_value" in change:
            continue  # Sales -> Sales is not a change
        old_text = pretty(previous) if previous not in (None, "", {}, []) else "-"
        new_text = pretty(new)
        old_parts: tuple[Part, ...]
        new_parts: tuple[Part, ...]
        if old_text == "-":  # nothing before: all of it is new, unless the object is new
            old_parts, new_parts = (Part(old_text),), (Part(new_text, previous is not None),)
        else:
            by_line = isinstance(previous, dict | list) or isinstance(new, dict | list)
            old_parts, new_parts = highlight(old_text, new_text, by_line=by_line)
        rows.append(DiffRow(key, old_text, new_text, (), old_parts, new_parts))
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
