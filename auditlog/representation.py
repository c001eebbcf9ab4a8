"""How an event is shown outside: its JSON (the list API's and the JSON Lines export's) and
the columns of its CSV export. The API serializers and the export writers both take their
fields from here, so the files and the API cannot drift apart."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any, TypedDict

import orjson
from django.db import connections
from django.db.models import F, Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from auditlog.compat import NEWER_ACTION_KEY, NEWER_ACTIONS
from auditlog.models import Event

# The JSON of an event, in authentik's field order.
EVENT_FIELDS: tuple[str, ...] = (
    "pk",
    "user",
    "action",
    "app",
    "context",
    "client_ip",
    "created",
    "expires",
    "brand",
)
# The CSV of events: the JSON's fields without ``user``, then the user's pk, username and
# email (as authentik's export serializer), each with its header label.
EVENT_CSV_COLUMNS: dict[str, str] = {
    "pk": "Pk",
    "action": "Action",
    "app": "App",
    "context": "Context",
    "client_ip": "Client ip",
    "created": "Created",
    "expires": "Expires",
    "brand": "Brand",
    "user_pk": "User pk",
    "username": "Username",
    "email": "Email",
}


class EventJSON(TypedDict):
    pk: str
    user: dict[str, Any]
    action: str
    app: str
    context: dict[str, Any]
    client_ip: str | None
    created: str | None
    expires: str | None
    brand: dict[str, Any]


def iso_datetime(value: datetime | None, tz: tzinfo | None = None) -> str | None:
    """A datetime as DRF writes it: in the current time zone (or ``tz``), ISO 8601, ``Z`` for
    UTC."""
    if value is None:
        return None
    text = value.astimezone(tz or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def event_json(event: Event, tz: tzinfo | None = None) -> EventJSON:
    """The event as the API lists it (``{}`` for an empty JSON field)."""
    tz = tz or timezone.get_current_timezone()
    return {
        "pk": str(event.event_uuid),
        "user": event.user if event.user is not None else {},
        "action": event.action,
        "app": event.app,
        "context": event.context if event.context is not None else {},
        "client_ip": event.client_ip,
        "created": iso_datetime(event.created, tz),
        "expires": iso_datetime(event.expires, tz),
        "brand": event.brand if event.brand is not None else {},
    }


# --- A page of events without model instances ------------------------------------------------
#
# A page of 1,000 events built field by field spends most of its time in the framework: a
# model instance per row, the JSON columns decoded by the standard library, then encoded
# again. ``event_rows`` selects the columns as a tuple per row with the JSON columns as their
# stored text, and ``row_json`` writes each as the same JSON as ``event_json`` (plus compat's
# action mapping), the stored JSON embedded as it is (``orjson.Fragment``): the renderer
# copies it into the answer without parsing it. Only an event whose action is answered as
# another one has its context decoded (the stored action goes into it), by the standard
# library as Django's JSONField does (orjson would turn an integer beyond 64 bits into a float).

# The columns of ``event_rows``, the primary key first (the paginator's deep pages join on it).
ROW_COLUMNS: tuple[str, ...] = (
    "event_uuid",
    "user_json",
    "action",
    "app",
    "context_json",
    "client_ip",
    "created",
    "expires",
    "brand_json",
)
EMPTY_OBJECT = orjson.Fragment(b"{}")


# PostgreSQL writes a UTC time as Python's isoformat() does (microseconds always; see _iso):
# parsing a timestamp into a datetime and formatting it again costs more than the rest of a row.
_UTC_TEXT = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"


def event_rows(queryset: QuerySet[Event]) -> QuerySet[Any]:
    """The queryset's events as tuples of :data:`ROW_COLUMNS` (same filters and order). On
    PostgreSQL with UTC as the current time zone, ``created`` and ``expires`` come as text."""
    times: dict[str, Any] = {}
    columns = ROW_COLUMNS
    if connections[queryset.db].vendor == "postgresql" and _is_utc(timezone.get_current_timezone()):
        times = {
            f"{name}_text": Func(F(name), template=_UTC_TEXT, output_field=TextField())
            for name in ("created", "expires")
        }
        columns = tuple(
            f"{name}_text" if name in ("created", "expires") else name for name in columns
        )
    return queryset.annotate(
        user_json=Cast("user", TextField()),
        context_json=Cast("context", TextField()),
        brand_json=Cast("brand", TextField()),
        **times,
    ).values_list(*columns)


def _is_utc(zone: tzinfo) -> bool:
    return zone is UTC or getattr(zone, "key", None) == "UTC"


def _fragment(text: str | None) -> Any:
    return EMPTY_OBJECT if text is None or text == "null" else orjson.Fragment(text)


def _iso(value: datetime | str | None, tz: tzinfo) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # UTC text from PostgreSQL: as isoformat() writes it
        return (value[:-7] if value.endswith(".000000") else value) + "Z"
    if tz is UTC and value.tzinfo is UTC:  # what the database hands back: no conversion
        text = value.isoformat()
    else:
        text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def row_json(row: tuple[Any, ...], tz: tzinfo) -> dict[str, Any]:
    """One row of :func:`event_rows` as the API lists it: ``event_json`` with compat's
    action mapping, the JSON columns as :class:`orjson.Fragment` (``{}`` for null)."""
    pk, user, action, app, context, client_ip, created, expires, brand = row
    mapped = NEWER_ACTIONS.get(action)
    if mapped is None:
        context_value = _fragment(context)
    else:
        stored = json.loads(context) if context not in (None, "null") else None
        context_value = {**(stored or {}), NEWER_ACTION_KEY: action}
        action = mapped
    return {
        "pk": str(pk),
        "user": _fragment(user),
        "action": action,
        "app": app,
        "context": context_value,
        "client_ip": client_ip,
        "created": _iso(created, tz),
        "expires": _iso(expires, tz),
        "brand": _fragment(brand),
    }


def rows_json(rows: Iterable[tuple[Any, ...]], tz: tzinfo | None = None) -> list[dict[str, Any]]:
    """A page of :func:`event_rows` as the API lists it (in the current time zone)."""
    zone = tz or timezone.get_current_timezone()
    if _is_utc(zone):
        zone = UTC
    return [row_json(row, zone) for row in rows]
