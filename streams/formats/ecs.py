"""Elastic Common Schema (ECS 8.11), as Elastic's authentik integration maps an authentik event.

The document is the one the integration's ingest pipeline (``packages/authentik``, data stream
``event``) would index for the same event, so dashboards and detection rules built for it work
on a stream sent straight to Elasticsearch:

* ``@timestamp`` and ``event.created`` from ``created``; ``event.id`` from ``pk``;
  ``event.action`` is the action lowercased with ``-`` for ``_``; ``event.kind`` is ``event``;
  ``event.category``/``event.type``/``event.outcome`` follow the pipeline's table below (other
  actions get none, as there);
* ``user.id`` (the pk as text), ``user.name``, ``user.email``, ``user.domain``;
  ``related.user`` and ``related.ip``; ``source.ip``;
* ``http.request.method``, ``url.path``, ``user_agent.original`` from ``context.http_request``;
* everything else stays under ``authentik.event`` (model references' pks as text, as the
  pipeline converts them), and null or empty values are dropped, as the pipeline does last.

Where the pipeline runs Elasticsearch's own GeoIP on ``source.ip``, the stream fills
``source.geo`` and ``source.as`` from the event's ``context.geo`` and ``context.asn``. The chain
fields are under the custom namespace ``auditlog.chain`` (and the sequence in
``event.sequence``), which ECS leaves free for custom fields.
"""

from __future__ import annotations

import copy
from typing import Any

from streams.formats.base import StreamRecord, as_object, compact_json, user_pk

ECS_VERSION = "8.11.0"

# action -> event.category, event.type, event.outcome (the pipeline's categorization script).
CATEGORIZATION: dict[str, tuple[list[str], list[str], str | None]] = {
    "login": (["authentication"], ["start"], "success"),
    "login_failed": (["authentication"], ["start"], "failure"),
    "logout": (["authentication"], ["end"], "success"),
    "user_write": (["iam"], ["change"], None),
    "suspicious_request": (["intrusion_detection"], ["info"], None),
    "password_set": (["iam"], ["change", "user"], None),
    "secret_view": (["iam"], ["info"], None),
    "secret_rotate": (["iam"], ["change"], None),
    "invitation_used": (["iam"], ["info"], None),
    "authorize_application": (["authentication"], ["info"], None),
    "configuration_error": (["configuration"], ["info"], None),
    "model_created": (["configuration"], ["info", "creation"], None),
    "model_updated": (["configuration"], ["info", "change"], None),
    "model_deleted": (["configuration"], ["info", "deletion"], None),
    "email_sent": (["email"], ["info"], None),
}

# Context references whose pk the pipeline converts to text (a keyword in its mapping).
_REFERENCES_WITH_PK = (
    ("model",),
    ("binding",),
    ("secret",),
    ("stage",),
    ("token",),
    ("authorized_application",),
    ("request", "obj"),
    ("request", "context", "event"),
    ("request", "user"),
)
# Context values the pipeline converts to booleans.
_BOOLEANS = (("result", "passing"), ("created",))


def _dig(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _as_bool(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _drop_empty(value: Any) -> Any:
    """``value`` without null, ``""``, ``{}`` and ``[]`` anywhere (None when nothing is left)."""
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, _drop_empty(v)) for k, v in value.items()) if v is not None}
        return kept or None
    if isinstance(value, list):
        items = [v for v in (_drop_empty(item) for item in value) if v is not None]
        return items or None
    return None if value is None or value == "" else value


def _unique(values: list[Any]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value is not None and value != "" and str(value) not in seen:
            seen.append(str(value))
    return seen


def _source(client_ip: str | None, context: dict[str, Any]) -> dict[str, Any]:
    geo = as_object(context.get("geo"))
    asn = as_object(context.get("asn"))
    location = None
    if isinstance(geo.get("lat"), int | float) and isinstance(geo.get("long"), int | float):
        location = {"lat": geo["lat"], "lon": geo["long"]}
    return {
        "ip": client_ip,
        "geo": {
            "continent_code": geo.get("continent"),
            "country_iso_code": geo.get("country"),
            "city_name": geo.get("city"),
            "location": location,
        },
        "as": {
            "number": asn.get("asn") if isinstance(asn.get("asn"), int) else None,
            "organization": {"name": asn.get("as_org")},
        },
    }


def _authentik_event(event: dict[str, Any]) -> dict[str, Any]:
    """What stays under ``authentik.event``: the event less what moved to ECS fields."""
    rest = copy.deepcopy(
        {k: v for k, v in event.items() if k not in ("pk", "client_ip", "created")}
    )
    user = rest.get("user")
    if isinstance(user, dict):
        for key in ("email", "pk", "username"):
            user.pop(key, None)
        if "is_anonymous" in user:
            user["is_anonymous"] = _as_bool(user["is_anonymous"])
        behalf = user.get("on_behalf_of")
        if isinstance(behalf, dict) and behalf.get("pk") is not None:
            behalf["pk"] = str(behalf["pk"])
    context = rest.get("context")
    if isinstance(context, dict):
        request = context.get("http_request")
        if isinstance(request, dict):
            for key in ("method", "path", "user_agent"):
                request.pop(key, None)
        for path in _REFERENCES_WITH_PK:
            reference = _dig(context, path)
            if isinstance(reference, dict) and reference.get("pk") is not None:
                reference["pk"] = str(reference["pk"])
        for *parents, key in _BOOLEANS:
            holder = _dig(context, tuple(parents))
            if isinstance(holder, dict) and key in holder:
                holder[key] = _as_bool(holder[key])
    return rest


def ecs_document(record: StreamRecord) -> dict[str, Any]:
    """The ECS document of ``record`` (nested objects, as Elasticsearch indexes it)."""
    event: dict[str, Any] = dict(record.event)
    user = event.get("user") or {}
    context = event.get("context") or {}
    request = as_object(context.get("http_request"))
    behalf = as_object(user.get("on_behalf_of"))
    email = user.get("email")
    action = str(event.get("action") or "")
    category, types, outcome = CATEGORIZATION.get(action, (None, None, None))
    document = {
        "@timestamp": event.get("created"),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": event.get("pk"),
            "kind": "event",
            "action": action.lower().replace("_", "-"),
            "category": category,
            "type": types,
            "outcome": outcome,
            "created": event.get("created"),
            "sequence": record.sequence,
        },
        "observer": {"vendor": "authentik", "product": "authentik"},
        "user": {
            "id": user_pk(user),
            "name": user.get("username"),
            "email": email,
            "domain": email.split("@", 1)[1] if isinstance(email, str) and "@" in email else None,
        },
        "related": {
            "user": _unique(
                [
                    email,
                    behalf.get("email"),
                    behalf.get("pk"),
                    behalf.get("username"),
                    user.get("pk"),
                    user.get("username"),
                ]
            ),
            "ip": _unique([event.get("client_ip")]),
        },
        "source": _source(event.get("client_ip"), context),
        "http": {"request": {"method": request.get("method")}},
        "url": {"path": request.get("path")},
        "user_agent": {"original": request.get("user_agent")},
        "authentik": {"event": _authentik_event(event)},
    }
    cleaned = _drop_empty(document) or {}
    # The chain keeps its nulls (previous_sequence of a destination's first record).
    cleaned["auditlog"] = {"chain": record.chain()}
    return cleaned


class EcsFormat:
    """Elastic Common Schema, as Elastic's authentik integration indexes an event."""

    name = "ecs"
    label = "Elastic Common Schema (ECS)"
    content_type = "application/json"

    def encode(self, record: StreamRecord) -> str:
        return compact_json(ecs_document(record))
