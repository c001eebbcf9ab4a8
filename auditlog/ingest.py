"""Ingesting events from other systems in batches, at close to the database's own speed.

The rules are those of the single-event API (a known or custom action, an app, JSON objects,
a valid IP; the server sets pk, created and expires; everything is sanitised), checked for the
whole batch before anything is written: a batch is stored completely or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from auditlog.bulk import EventRow, write_events
from auditlog.chain.sealing import request_seal
from auditlog.models import action_problem, canonical_ip, current_retention, default_event_brand
from auditlog.sanitize import sanitize

MAX_BATCH = 5_000
FIELDS = {"action", "app", "user", "context", "client_ip", "brand"}
IGNORED = {"pk", "created", "expires"}  # set by the server, accepted and ignored


@dataclass
class BatchError(Exception):
    """Why a batch was refused: ``{index: {field: [message]}}``, or one message."""

    errors: dict[str, Any]


def validate_item(item: Any) -> tuple[dict[str, list[str]], str | None]:
    """The problems of one event of a batch (empty: none), and its client IP in canonical
    form (``None`` when it has none or it is invalid)."""
    if not isinstance(item, dict):
        return {"non_field_errors": ["Expected a JSON object."]}, None
    problems: dict[str, list[str]] = {}
    unknown = set(item) - FIELDS - IGNORED
    if unknown:
        problems["non_field_errors"] = [f"Unknown fields: {', '.join(sorted(unknown))}."]
    action = item.get("action")
    if not isinstance(action, str) or not action:
        problems["action"] = ["This field is required."]
    elif problem := action_problem(action):
        problems["action"] = [problem]
    app = item.get("app")
    if not isinstance(app, str) or not app or len(app) > 255:
        problems["app"] = ["This field is required (a text of at most 255 characters)."]
    for key in ("user", "context", "brand"):
        if key in item and not isinstance(item[key], dict):
            problems[key] = ["Expected a JSON object."]
    address = item.get("client_ip")
    client_ip = None
    if address is not None and address != "":
        try:
            client_ip = canonical_ip(address)
        except ValueError as exc:
            problems["client_ip"] = [str(exc)]
    return problems, client_ip


def ingest_events(items: Any) -> list[EventRow]:
    """Validate the whole batch, then write it in one transaction; return the events.

    Raises :class:`BatchError` (nothing written) when any event is invalid.
    """
    if not isinstance(items, list) or not items:
        raise BatchError({"non_field_errors": ["Expected a non-empty JSON array of events."]})
    if len(items) > MAX_BATCH:
        raise BatchError({"non_field_errors": [f"At most {MAX_BATCH} events per batch."]})
    errors: dict[str, Any] = {}
    addresses: list[str | None] = []
    for index, item in enumerate(items):
        problems, client_ip = validate_item(item)
        if problems:
            errors[str(index)] = problems
        addresses.append(client_ip)
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
            client_ip=client_ip,
            created=now,
            brand=sanitize(item["brand"]) if "brand" in item else brand,
            expires=expires,
        )
        for item, client_ip in zip(items, addresses, strict=True)
    ]
    with transaction.atomic():
        write_events(events, batch_size=MAX_BATCH)
        request_seal()  # chained within seconds, like events saved one by one
    return events
