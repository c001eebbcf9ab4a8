"""Which events a rule matches and whom it notifies.

A rule's ``match`` is a DjangoQL query over events (the event log's search language); the
database decides which rules match an event, in one query for all of them. A rule without a
match matches nothing (see :class:`~notifications.models.NotificationRule`).

:func:`wanted_actions` says cheaply which events are worth a dispatch task at all: none while
no rule is enabled, and only events with the actions the rules name when every enabled rule
names them (``action = "x"``, ``action in (...)``). It is cached per process for
:data:`RULES_CACHE_SECONDS` and dropped at once when a rule changes in this process (other
processes notice within that time).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import DatabaseError
from django.db.models import Count
from djangoql.ast import Comparison, Const, Expression, List, Logical, Name, Node

from auditlog.models import Event, EventAction
from auditlog.search import EventSearchSchema, SearchError, compile_query, parse
from directory.models import User
from notifications.models import NotificationRule

logger = logging.getLogger(__name__)

RULES_CACHE_SECONDS = 30.0

_rules_lock = threading.Lock()
# (when it was read, the actions some enabled rule may match: None for any action)
_rules_cache: tuple[float, frozenset[str] | None] | None = None


# --- Which actions are worth a task -------------------------------------------------------------


def wanted_actions() -> frozenset[str] | None:
    """The actions an enabled rule may match: ``None`` for any action, empty when no rule is
    enabled (or none has a match). Cached per process (see :func:`forget_rules`)."""
    global _rules_cache
    now = time.monotonic()
    cached = _rules_cache
    if cached is not None and now - cached[0] < RULES_CACHE_SECONDS:
        return cached[1]
    try:
        queries = list(
            NotificationRule.objects.filter(enabled=True).values_list("match", flat=True)
        )
    except DatabaseError:  # before the migration that adds rules
        queries = []
    wanted: frozenset[str] | None = frozenset()
    for query in queries:
        if not query.strip():
            continue  # matches nothing
        actions = actions_of(query)
        wanted = None if actions is None or wanted is None else wanted | actions
    with _rules_lock:
        _rules_cache = (now, wanted)
    return wanted


def has_enabled_rules() -> bool:
    return wanted_actions() != frozenset()


def may_match(action: str) -> bool:
    """Whether some enabled rule may match an event with this action."""
    wanted = wanted_actions()
    return wanted is None or action in wanted


def actions_of(query: str) -> frozenset[str] | None:
    """The actions an event needs to match ``query``, when the query says so through
    ``action = "x"`` or ``action in (...)`` joined by and/or; ``None``: it does not say."""
    try:
        return _required_actions(parse(query))
    except SearchError:
        return None


def _required_actions(node: Node) -> frozenset[str] | None:
    if not isinstance(node, Expression):
        return None
    operator = node.operator
    if isinstance(operator, Logical):
        left, right = _required_actions(node.left), _required_actions(node.right)
        if operator.operator == "and":
            return right if left is None else left if right is None else left & right
        return None if left is None or right is None else left | right
    if not (isinstance(node.left, Name) and node.left.parts == ["action"]):
        return None
    values: list[Any] | None = None
    if isinstance(operator, Comparison) and operator.operator == "=":
        values = [node.right.value] if isinstance(node.right, Const) else None
    elif isinstance(operator, Comparison) and operator.operator == "in":
        values = node.right.value if isinstance(node.right, List) else None
    if not values or not all(isinstance(value, str) for value in values):
        return None
    return frozenset(_action_value(value) for value in values)


def _action_value(text: str) -> str:
    """As the search does: a label (``Login Failed``) means its value (``login_failed``)."""
    by_label = {str(label).lower(): str(value) for value, label in EventAction.choices}
    return by_label.get(text.lower(), text)


def forget_rules(**_: Any) -> None:
    """Drop the cached :func:`wanted_actions` (a rule changed)."""
    global _rules_cache
    with _rules_lock:
        _rules_cache = None


# --- Matching -----------------------------------------------------------------------------------


def enabled_rules() -> list[NotificationRule]:
    return list(
        NotificationRule.objects.filter(enabled=True)
        .select_related("destination_group")
        .prefetch_related("transports")
        .order_by("name")
    )


def matching_rules(event: Event, rules: list[NotificationRule]) -> list[NotificationRule]:
    """The rules whose query matches ``event``, decided by the database in one query.

    A rule without a match matches nothing; one whose stored query no longer compiles is
    skipped with a warning.
    """
    conditions = {}
    for index, rule in enumerate(rules):
        if not rule.match.strip():
            continue
        try:
            conditions[f"rule_{index}"] = Count(
                "pk", filter=compile_query(rule.match, EventSearchSchema)
            )
        except SearchError as exc:
            logger.warning("Notification rule %r has an invalid query: %s", rule.name, exc)
    if not conditions:
        return []
    counts = Event.objects.filter(pk=event.pk).aggregate(**conditions)
    return [rule for index, rule in enumerate(rules) if counts.get(f"rule_{index}")]


def recipients(rule: NotificationRule, event: Event) -> list[User]:
    """Active members of the destination group (by pk), then the event's user if asked for."""
    users: list[User] = []
    if rule.destination_group is not None:
        users += list(rule.destination_group.users.filter(is_active=True).order_by("pk"))
    if rule.destination_event_user:
        event_user = _event_user_pk(event)
        if event_user is not None and all(user.pk != event_user for user in users):
            users += list(User.objects.filter(pk=event_user, is_active=True))
    return users


def _event_user_pk(event: Event) -> int | None:
    pk = event.user.get("pk") if isinstance(event.user, dict) else None
    if isinstance(pk, bool):
        return None
    if isinstance(pk, int):
        return pk
    if isinstance(pk, str) and pk.isdigit():
        return int(pk)
    return None
