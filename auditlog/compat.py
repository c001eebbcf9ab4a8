"""The authentik release whose API this product answers as: the one place that says which.

The API targets the newest released authentik API: its schema's shapes, enums and required
fields are the contract, so that release's generated clients (PyPI ``authentik-client``,
npm ``@goauthentik/api``) read every answer; ``tests/api/test_authentik_client.py`` drives a
live server with the pinned Python client to prove it.

Moving the target to a newer release:

1. set ``TARGET_RELEASE`` (``auditlog/models.py``) and pin the matching ``authentik-client``
   in pyproject's dev extra;
2. move the actions that release adds from ``NEWER_ACTIONS`` into ``EventAction``
   (``auditlog/models.py``; ``makemigrations`` then writes the choices migration);
3. run the client test and fix what its models reject.

Until an action is in the target release, the product writes what that release writes for the
same thing (``NEWER_ACTIONS``), and answers stored events that carry a newer action with the
target's action, the stored one kept in the context under ``action_in_newer_releases``.
Stored events are never rewritten: they are sealed into the hash chain as they are.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import NEWER_ACTIONS, TARGET_RELEASE, EventAction

__all__ = ["NEWER_ACTIONS", "TARGET_ACTIONS", "TARGET_CLIENT", "TARGET_RELEASE"]

TARGET_CLIENT = "authentik-client 2026.8.5"

# TARGET_RELEASE and NEWER_ACTIONS (actions of authentik releases newer than the target, with
# the target's action for the same thing) are defined beside EventAction in auditlog/models.py:
# stored events may carry a newer action (written before the target moved back, or kept from
# an import); the product writes none of them and the API answers them as the mapped action.

# Where an answer keeps the stored action when it is mapped.
NEWER_ACTION_KEY = "action_in_newer_releases"
# Every action the target release knows (its EventActions enum, ``custom_`` included).
TARGET_ACTIONS: frozenset[str] = frozenset(EventAction.values)


def action_for_client(action: str, context: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The action and context an event is answered with: a newer release's action becomes the
    target's, the stored one kept in the context; anything else is answered as stored."""
    mapped = NEWER_ACTIONS.get(action)
    if mapped is None:
        return action, context if context is not None else {}
    return mapped, {**(context or {}), NEWER_ACTION_KEY: action}


def stored_actions_for(action: str) -> list[str]:
    """The stored actions a filter on the target's ``action`` covers (itself, and the newer
    actions answered as it), so a filter finds what the list shows."""
    return [action, *(newer for newer, mapped in NEWER_ACTIONS.items() if mapped == action)]


def volume_for_client(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Volume rows (``action``, ``time``, ``count``, ordered by time then action) with newer
    actions counted under the target's action."""
    if not any(row["action"] in NEWER_ACTIONS for row in rows):
        return rows
    counts: dict[tuple[Any, str], int] = {}
    for row in rows:
        key = (row["time"], NEWER_ACTIONS.get(row["action"], row["action"]))
        counts[key] = counts.get(key, 0) + row["count"]
    return [
        {"action": action, "time": time, "count": count}
        for (time, action), count in sorted(counts.items())
    ]
