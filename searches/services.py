"""Saving, checking and resolving saved searches.

A saved search is checked when it is saved and again wherever it is used: a query that no
longer parses (a field renamed since) is reported with the search's name and the reason, so a
rule, an export or a stream never matches nothing silently. :func:`resolve_saved_search` is
the one call other rooms (rules, exports, SIEM streams) make to turn a saved search into an
event query.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction

from auditlog.listing import (
    EVENT_LISTING,
    ListingError,
    OrderingError,
    as_query_dict,
    resolve_ordering,
)
from auditlog.models import Event, EventAction
from auditlog.search import EventSearchSchema, SearchError, compile_query, looks_like_query
from auditlog.views import EVENT_ORDERING, EVENT_ORDERING_ALIASES, EVENT_PARAMS
from searches.models import PUBLISH_PERMISSION, SavedSearch

FILTER_KEYS = tuple(key for key in EVENT_PARAMS if key != "search")
MAX_NAME = 200


class SavedSearchError(ValueError):
    """A saved search that cannot be saved, found or used; the message says why."""


def problem_of(*, query: str, filters: dict[str, Any], ordering: str = "") -> str | None:
    """Why this search cannot run today (``None``: it can)."""
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        return f"Unknown filter: {', '.join(unknown)} (use {', '.join(FILTER_KEYS)})."
    try:
        if query.strip() and looks_like_query(query.strip()):
            compile_query(query.replace("\x00", "").strip(), EventSearchSchema)
        EVENT_LISTING.filter(Event.objects.none(), as_query_dict(filters))
        resolve_ordering(
            ordering or None,
            allowed=EVENT_ORDERING,
            aliases=EVENT_ORDERING_ALIASES,
            default=["-created"],
            pk="event_uuid",
        )
    except (SearchError, ListingError, OrderingError) as exc:
        return str(exc)
    return None


def problem_of_saved(saved: SavedSearch) -> str | None:
    """Why ``saved`` no longer runs, in words naming it (``None``: it runs)."""
    problem = problem_of(query=saved.query, filters=saved.filters or {}, ordering=saved.ordering)
    return f'The saved search "{saved.name}" no longer works: {problem}' if problem else None


def _clean_filters(filters: Any) -> dict[str, str | list[str]]:
    if filters in (None, ""):
        return {}
    if not isinstance(filters, dict):
        raise SavedSearchError("filters: must be an object of the event list's parameters.")
    cleaned: dict[str, str | list[str]] = {}
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in values):
            raise SavedSearchError(f"filters: {key} must be text or a list of texts.")
        if values and values != [""]:
            cleaned[str(key)] = list(values) if isinstance(value, list) else str(value)
    return cleaned


def save_search(
    *,
    user: Any,
    name: str,
    query: str = "",
    filters: Any = None,
    ordering: str = "",
    shared: bool = False,
    instance: SavedSearch | None = None,
) -> SavedSearch:
    """Create (or update ``instance``) after checking that the search runs and that ``user``
    may publish it when shared. Raises :class:`SavedSearchError` with the reason."""
    name = (name or "").strip()
    if not name:
        raise SavedSearchError("name: Give the search a name.")
    if len(name) > MAX_NAME or "\x00" in name:
        raise SavedSearchError(f"name: At most {MAX_NAME} characters, without null characters.")
    if "\x00" in query or "\x00" in ordering:
        raise SavedSearchError("query: Null characters are not allowed.")
    cleaned = _clean_filters(filters)
    if shared and not (instance and instance.shared) and not user.has_perm(PUBLISH_PERMISSION):
        raise SavedSearchError(
            f"shared: Only administrators may publish shared searches ({PUBLISH_PERMISSION})."
        )
    if problem := problem_of(query=query, filters=cleaned, ordering=ordering):
        raise SavedSearchError(f"query: {problem}")
    saved = instance or SavedSearch(owner=user)
    saved.name, saved.query, saved.filters = name, query.strip(), cleaned
    saved.ordering, saved.shared = ordering.strip(), shared
    try:
        with transaction.atomic():
            saved.save()
    except IntegrityError:
        raise SavedSearchError(f'name: You already have a saved search "{name}".') from None
    return saved


def may_change(saved: SavedSearch, user: Any) -> bool:
    """The owner changes a search; a publisher also changes the shared ones."""
    return saved.owner_id == user.pk or (saved.shared and user.has_perm(PUBLISH_PERMISSION))


def set_pinned(saved: SavedSearch, user: Any, pinned: bool) -> None:
    """Pin (or unpin) ``saved`` to ``user``'s navigation."""
    if pinned:
        saved.pinned_by.add(user)
    else:
        saved.pinned_by.remove(user)


def find_saved_search(pk_or_name: int | str, user: Any) -> SavedSearch:
    """The saved search ``user`` may use, by pk or by name (their own before a shared one)."""
    visible = SavedSearch.objects.visible_to(user)
    text = str(pk_or_name).strip()
    found = None
    if text.isdecimal():
        found = visible.filter(pk=int(text)).first()
    if found is None:
        named = sorted(visible.filter(name=text), key=lambda each: each.owner_id != user.pk)
        found = named[0] if named else None
    if found is None:
        raise SavedSearchError(f"There is no saved search {text!r} that you may use.")
    return found


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _filter_query(key: str, values: list[str]) -> str:
    if key == "actions":
        return f"action in ({', '.join(_quoted(value) for value in values)})"
    value = values[0]
    if key == "action":
        known = [action for action in EventAction.values if value.lower() in action]
        if not known:
            raise SavedSearchError(f"No action contains {value!r}.")
        return f"action in ({', '.join(_quoted(action) for action in known)})"
    if key == "username":
        return f"user.username = {_quoted(value)} or context.username = {_quoted(value)}"
    paths = {
        "client_ip": "client_ip",
        "context_model_pk": "context.model.pk",
        "context_model_name": "context.model.model_name",
        "context_model_app": "context.model.app",
        "context_authorized_app": "context.authorized_application.pk",
        "brand_name": "brand.name",
    }
    return f"{paths[key]} = {_quoted(value)}"


def event_query_of(saved: SavedSearch) -> str:
    """``saved`` as one DjangoQL query (its filters written as conditions), for the places
    that take a query rather than list parameters: a rule's match, a stream's filter.
    Raises :class:`SavedSearchError` when it no longer runs or is plain text."""
    if problem := problem_of_saved(saved):
        raise SavedSearchError(problem)
    parts = []
    if saved.query:
        if not looks_like_query(saved.query):
            raise SavedSearchError(
                f'The saved search "{saved.name}" is a plain-text search; only a query '
                '(such as action = "login_failed") can be used here.'
            )
        parts.append(saved.query)
    for key, value in (saved.filters or {}).items():
        parts.append(_filter_query(key, value if isinstance(value, list) else [value]))
    if not parts:
        raise SavedSearchError(f'The saved search "{saved.name}" has no query.')
    query = parts[0] if len(parts) == 1 else " and ".join(f"({part})" for part in parts)
    try:
        compile_query(query, EventSearchSchema)
    except SearchError as exc:
        raise SavedSearchError(f'The saved search "{saved.name}" no longer works: {exc}') from None
    return query


def resolve_saved_search(pk_or_name: int | str, user: Any) -> str:
    """The event query (DjangoQL) of the saved search ``pk_or_name`` that ``user`` may use.
    Raises :class:`SavedSearchError` saying why when there is none, or it no longer parses."""
    return event_query_of(find_saved_search(pk_or_name, user))
