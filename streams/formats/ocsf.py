"""Open Cybersecurity Schema Framework (OCSF 1.5.0) events.

Each event becomes one OCSF class:

* Authentication (3002): ``login`` (Logon), ``logout`` (Logoff), ``login_failed`` (Logon,
  status Failure); the subject is the event's user, or the attempted ``context.username``;
* Account Change (3001): ``password_set`` (Password Change), ``user_write`` (Create when
  ``context.created``, else Other), ``user_offboarded`` (Disable), and model changes of a
  user (Create, Delete, Enable/Disable on ``is_active``, Password Change, else Other);
* Group Management (3006): a change of a group's members, seen from the group or from a user
  with one group (Add User / Remove User), and groups created (Create) or deleted (Delete);
* API Activity (6003): every other model change (Create, Update, Delete) and every other
  action (Other), with ``api.operation`` the action and the model in ``resources``.

Every event has ``metadata`` (``uid`` the event's pk, ``sequence`` its chain sequence,
``event_code`` the action), ``time`` (epoch milliseconds), ``severity_id``, ``actor`` (the
event's user, and ``app_name`` its app), ``src_endpoint`` (address, GeoIP location, AS) and
``http_request`` when known. What OCSF has no attribute for (the app, context, brand and
expiry) is kept under ``unmapped.authentik``, and the chain fields under ``unmapped.chain``.
"""

from __future__ import annotations

from typing import Any

from streams.formats.base import (
    StreamRecord,
    action_severity,
    as_object,
    compact_json,
    epoch_millis,
    user_pk,
)

OCSF_VERSION = "1.5.0"
PRODUCT = {"name": "auditlog-server", "vendor_name": "auditlog", "feature": {"name": "Events"}}

AUTHENTICATION, ACCOUNT_CHANGE, GROUP_MANAGEMENT, API_ACTIVITY = 3002, 3001, 3006, 6003
CATEGORIES = {3: "Identity & Access Management", 6: "Application Activity"}
CLASSES: dict[int, tuple[str, dict[int, str]]] = {
    AUTHENTICATION: ("Authentication", {1: "Logon", 2: "Logoff", 99: "Other"}),
    ACCOUNT_CHANGE: (
        "Account Change",
        {1: "Create", 2: "Enable", 3: "Password Change", 5: "Disable", 6: "Delete", 99: "Other"},
    ),
    GROUP_MANAGEMENT: (
        "Group Management",
        {3: "Add User", 4: "Remove User", 5: "Delete", 6: "Create", 99: "Other"},
    ),
    API_ACTIVITY: ("API Activity", {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}),
}
SEVERITIES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}
STATUS_SUCCESS, STATUS_FAILURE = 1, 2
STATUSES = {STATUS_SUCCESS: "Success", STATUS_FAILURE: "Failure"}
FAILED_ACTIONS = frozenset(
    {
        "login_failed",
        "policy_exception",
        "property_mapping_exception",
        "system_task_exception",
        "system_exception",
        "configuration_error",
    }
)
MODEL_ACTIVITY = {"model_created": 1, "model_updated": 3, "model_deleted": 4}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _prune(value: Any) -> Any:
    """``value`` without None and empty objects (OCSF attributes are absent, not null)."""
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, _prune(v)) for k, v in value.items()) if v is not None}
        return kept or None
    return value


def _user(user: dict[str, Any]) -> dict[str, Any] | None:
    return _prune(
        {
            "uid": user_pk(user),
            "name": _text(user.get("username")),
            "email_addr": _text(user.get("email")),
        }
    )


def _model_user(model: dict[str, Any]) -> dict[str, Any]:
    return _prune({"uid": _text(model.get("pk")), "name": _text(model.get("name"))}) or {}


def _object(value: Any) -> dict[str, Any]:
    return as_object(value)


def _src_endpoint(client_ip: str | None, context: dict[str, Any]) -> dict[str, Any]:
    geo, asn = _object(context.get("geo")), _object(context.get("asn"))
    location = {
        "city": _text(geo.get("city")),
        "country": _text(geo.get("country")),
        "continent": _text(geo.get("continent")),
        "lat": geo.get("lat") if isinstance(geo.get("lat"), int | float) else None,
        "long": geo.get("long") if isinstance(geo.get("long"), int | float) else None,
    }
    system = {
        "number": asn.get("asn") if isinstance(asn.get("asn"), int) else None,
        "name": _text(asn.get("as_org")),
    }
    return _prune({"ip": client_ip, "location": location, "autonomous_system": system}) or {}


def _http_request(context: dict[str, Any]) -> dict[str, Any] | None:
    request = _object(context.get("http_request"))
    return _prune(
        {
            "http_method": _text(request.get("method")),
            "url": {"path": _text(request.get("path"))},
            "user_agent": _text(request.get("user_agent")),
            "uid": _text(request.get("request_id")),
        }
    )


def _membership(context: dict[str, Any]) -> tuple[int, dict[str, Any], list[dict[str, Any]]] | None:
    """(Add User or Remove User, the group, the members) for a change of a group's members."""
    model, diff = _object(context.get("model")), _object(context.get("diff"))
    kind = model.get("model_name")
    change = _object(diff.get("users" if kind == "group" else "groups"))
    if kind not in ("group", "user") or not change:
        return None
    activity = 3 if "add" in change else 4
    pks = change.get("add", change.get("remove", []))
    pks = pks if isinstance(pks, list) else []
    if kind == "group":
        group = {"uid": _text(model.get("pk")), "name": _text(model.get("name"))}
        return activity, _prune(group) or {}, [{"uid": str(pk)} for pk in pks]
    if len(pks) != 1:
        return None
    return activity, {"uid": str(pks[0])}, [_model_user(model)]


def _account_activity(action: str, context: dict[str, Any]) -> int:
    if action == "password_set":
        return 3
    if action == "user_offboarded":
        return 5
    if action == "user_write":
        return 1 if context.get("created") is True else 99
    if action == "model_created":
        return 1
    if action == "model_deleted":
        return 6
    diff = _object(context.get("diff"))
    if "is_active" in diff:
        return 2 if _object(diff["is_active"]).get("new_value") is True else 5
    return 3 if "password" in diff else 99


def classify(event: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
    """(class_uid, activity_id, the class's own attributes) for an event."""
    action = str(event.get("action") or "")
    context = _object(event.get("context"))
    user = _object(event.get("user"))
    model = _object(context.get("model"))
    kind = model.get("model_name")
    if action in ("login", "login_failed", "logout"):
        subject = _user(user) or _prune({"name": _text(context.get("username"))}) or {}
        return AUTHENTICATION, 2 if action == "logout" else 1, {"user": subject}
    if action in MODEL_ACTIVITY and (membership := _membership(context)):
        activity, group, members = membership
        attributes: dict[str, Any] = {"group": group}
        if len(members) == 1:
            attributes["user"] = members[0]
        return GROUP_MANAGEMENT, activity, attributes
    if kind == "group" and action in ("model_created", "model_deleted"):
        group = _prune({"uid": _text(model.get("pk")), "name": _text(model.get("name"))}) or {}
        return GROUP_MANAGEMENT, 6 if action == "model_created" else 5, {"group": group}
    if action in ("password_set", "user_write", "user_offboarded"):
        return ACCOUNT_CHANGE, _account_activity(action, context), {"user": _user(user) or {}}
    if kind == "user" and action in MODEL_ACTIVITY:
        return ACCOUNT_CHANGE, _account_activity(action, context), {"user": _model_user(model)}
    resource = _prune(
        {
            "uid": _text(model.get("pk")),
            "name": _text(model.get("name")),
            "type": _text(kind),
            "namespace": _text(model.get("app")),
        }
    )
    attributes = {"api": {"operation": action}}
    if resource:
        attributes["resources"] = [resource]
    return API_ACTIVITY, MODEL_ACTIVITY.get(action, 99), attributes


def ocsf_event(record: StreamRecord) -> dict[str, Any]:
    """The OCSF event of ``record``."""
    event: dict[str, Any] = dict(record.event)
    action = str(event.get("action") or "")
    context = _object(event.get("context"))
    class_uid, activity_id, attributes = classify(event)
    class_name, activities = CLASSES[class_uid]
    category_uid = class_uid // 1000
    activity_name = activities.get(activity_id, "Other")
    severity_id = action_severity(action)
    status_id = STATUS_FAILURE if action in FAILED_ACTIONS else STATUS_SUCCESS
    document: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": CATEGORIES[category_uid],
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "time": epoch_millis(event.get("created")),
        "severity_id": severity_id,
        "severity": SEVERITIES[severity_id],
        "status_id": status_id,
        "status": STATUSES[status_id],
        "message": _text(context.get("message")) or action.replace("_", " ").capitalize(),
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": event.get("pk"),
            "event_code": action,
            "sequence": record.sequence,
            "original_time": event.get("created"),
            "log_name": "events",
        },
        "actor": _prune({"user": _user(_object(event.get("user"))), "app_name": event.get("app")})
        or {},
        "src_endpoint": _src_endpoint(event.get("client_ip"), context),
        "http_request": _http_request(context),
        **attributes,
        "unmapped": {
            "authentik": {
                "app": event.get("app"),
                "context": context,
                "brand": _object(event.get("brand")),
                "expires": event.get("expires"),
                "user": _object(event.get("user")),
            },
            "chain": record.chain(),
        },
    }
    if status_id == STATUS_FAILURE and isinstance(context.get("message"), str):
        document["status_detail"] = context["message"]
    return {key: value for key, value in document.items() if value is not None}


class OcsfFormat:
    """OCSF 1.5.0: Authentication, Account Change, Group Management or API Activity."""

    name = "ocsf"
    label = "OCSF 1.5.0"
    content_type = "application/json"

    def encode(self, record: StreamRecord) -> str:
        return compact_json(ocsf_event(record))
