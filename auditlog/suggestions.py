"""What the search completion offers: field names, JSON keys seen in recent events, values.

Everything here is bounded: JSON keys come from a sample of the newest events and are cached
briefly; values are looked up among the newest events only.
"""

from __future__ import annotations

import time
from threading import Lock
from typing import Any

from django.db.models import Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.urls import reverse

from auditlog.models import Event
from auditlog.search import EventSearchSchema, schema_for, shape_of

SAMPLE_SIZE = 500
VALUE_SCAN = 5000
MAX_VALUES = 100
_TTL_SECONDS = 60.0
_lock = Lock()
_cached: tuple[float, dict[str, Any]] | None = None


def event_introspection() -> dict[str, Any]:
    """DjangoQL introspection of the event schema, JSON keys included (cached for a minute)."""
    global _cached
    now = time.monotonic()
    if _cached is not None and now - _cached[0] < _TTL_SECONDS:
        return _cached[1]
    sample = list(
        Event.objects.latest_first().values_list("user", "context", "brand")[:SAMPLE_SIZE]
    )
    shapes = {
        "user": shape_of(row[0] for row in sample),
        "context": shape_of(row[1] for row in sample),
        "brand": shape_of(row[2] for row in sample),
    }
    introspection = schema_for(EventSearchSchema).introspection(shapes)
    introspection["suggestions_api_url"] = reverse("event-suggestions")
    with _lock:
        _cached = (now, introspection)
    return introspection


def forget_introspection() -> None:
    global _cached
    with _lock:
        _cached = None


def suggest_values(field: str, search: str) -> list[Any]:
    """Values for ``<model label>.<field>`` that contain ``search``."""
    label, _, name = field.rpartition(".")
    schema = schema_for(EventSearchSchema)
    if label == schema.model_label(schema.current_model):
        known = schema.models[label].get(name)
        if known is None or not known.suggest_options:
            raise LookupError(f"{field!r} has no suggestions.")
        return list(known.get_options(search))[:MAX_VALUES]
    event_introspection()  # makes sure the JSON labels are known
    path = schema.json_path_for_label(label)
    if path is None:
        raise LookupError(f"Unknown field {field!r}.")
    expression: Any = path[0]
    for key in path[1:]:
        expression = KeyTransform(key, expression)
    value = KeyTextTransform(name, expression)
    recent = Event.objects.latest_first().values("pk")[:VALUE_SCAN]
    queryset = (
        Event.objects.filter(pk__in=Subquery(recent))
        .annotate(value=value)
        .filter(value__isnull=False)
    )
    if search:
        queryset = queryset.filter(value__icontains=search)
    values = queryset.order_by("value").values_list("value", flat=True).distinct()[: MAX_VALUES + 1]
    return [item for item in values if item != ""][:MAX_VALUES]
