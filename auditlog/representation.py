"""How an event is shown outside: its JSON (the list API's and the JSON Lines export's) and
the columns of its CSV export. The API serializers and the export writers both take their
fields from here, so the files and the API cannot drift apart."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, TypedDict

from django.utils import timezone

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
