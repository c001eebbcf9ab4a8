"""Ingesting events from other systems in batches, at close to the database's own speed.

The rules are those of the single-event API (a known or custom action, an app, JSON objects,
a valid IP; the server sets pk, created and expires; everything is sanitised), checked for the
whole batch before anything is written: a batch is stored completely or not at all.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from auditlog.bulk import EventRow, write_events
from auditlog.chain import request_seal
from auditlog.models import current_retention, default_event_brand, is_valid_action
from auditlog.sanitize import sanitize

MAX_BATCH = 5_000
FIELDS = {"action", "app", "user", "context", "client_ip", "brand"}
IGNORED = {"pk", "created", "expires"}  # set by the server, accepted and ignored


@dataclass
class BatchError(Exception):
    """Why a batch was refused: ``{index: {field: [message]}}``, or one message."""

    errors: dict[str, Any]


def validate_item(item: Any) -> dict[str, list[str]]:
    """The problems of one event of a batch (empty: none)."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Expected a JSON object."]}
    problems: dict[str, list[str]] = {}
    unknown = set(item) - FIELDS - IGNORED
    if unknown:
        problems["non_field_errors"] = [f"Unknown fields: {', '.join(sorted(unknown))}."]
    action = item.get("action")
    if not isinstance(action, str) or not action:
        problems["action"] = ["This field is required."]
    elif not is_valid_action(action):
        problems["action"] = [
            f"{action!r} is not a known action; use one of actions/ or custom_<name>."
        ]
    app = item.get("app")
    if not isinstance(app, str) or not app or len(app) > 255:
        problems["app"] = ["This field is required (a text of at most 255 characters)."]
    for key in ("user", "context", "brand"):
        if key in item and not isinstance(item[key], dict):
            problems[key] = ["Expected a JSON object."]
    address = item.get("client_ip")
    if address is not None and address != "":
        try:
            ipaddress.ip_address(address)
        except (TypeError, ValueError):
            problems["client_ip"] = [f"{address!r} is not a valid IP address."]
    return problems


def ingest_events(items: Any) -> list[EventRow]:
    """Validate the whole batch, then write it in one transaction; return the events.

    Raises :class:`BatchError` (nothing written) when any event is invalid.
    """
    if not isinstance(items, list) or not items:
        raise BatchError({"non_field_errors": ["Expected a non-empty JSON array of events."]})
    if len(items) > MAX_BATCH:
        raise BatchError({"non_field_errors": [f"At most {MAX_BATCH} events per batch."]})
    errors = {
        str(index): problems
        for index, item in enumerate(items)
        if (problems := validate_item(item))
    }
    if errors:
        raise BatchError(errors)
    now = timezone.now()
    expires = now + current_retention()
    brand = default_event_brand()
    events = [
        EventRow(
            event_uuid=uuid.uuid4(),
            user=sanitize(item.get("user") or {}),
            action=item["action"],
            app=item["app"],
            context=sanitize(item.get("context") or {}),
            client_ip=_address(item.get("client_ip")),
            created=now,
            brand=sanitize(item["brand"]) if "brand" in item else brand,
            expires=expires,
        )
        for item in items
    ]
    with transaction.atomic():
        write_events(events, batch_size=MAX_BATCH)
        dispatch = [(str(event.event_uuid), event.action) for event in events]
        transaction.on_commit(partial(_notify, dispatch), robust=True)
        request_seal()  # chained within seconds, like events saved one by one
    return events


def _address(value: Any) -> str | None:
    return str(ipaddress.ip_address(value)) if value else None


def _notify(events: list[tuple[str, str]]) -> None:
    """Notification rules see ingested events as they see every other event."""
    from auditlog.notifications import enqueue_dispatch_batch

    enqueue_dispatch_batch(events)
