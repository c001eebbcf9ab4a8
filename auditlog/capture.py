"""Model-change capture: every save, delete and many-to-many change of an audited model becomes
a ``model_created`` / ``model_updated`` / ``model_deleted`` event with a field diff.

This is the signal path: SQLite's, and PostgreSQL's with ``AUDIT_DB_CAPTURE`` off. On PostgreSQL
the database's triggers (:mod:`auditlog.triggers`) record the same events and the receivers
below only tell them what they cannot see (which side of a many-to-many relation changed and
whether it is a ``clear()``, which objects are being deleted); the ORM's bulk paths are
:mod:`auditlog.bulkcapture`'s.

How it works:

* ``post_init`` keeps a snapshot of the instance's field values as loaded, so the previous state
  of a save costs no query;
* ``post_save`` compares the snapshot with the saved values (honouring ``update_fields``),
  records the event and refreshes the snapshot; ``pre_delete`` records the final state;
  ``m2m_changed`` records ``{relation: {add|remove: [pks], names: {pk: name}}}`` or
  ``{relation: {clear: true, names: ...}}`` for the instance, and the other side's change for
  each related object that is audited;
* the event is written in the same database transaction as the change. Deletes and
  many-to-many changes already run in one; Django sends ``post_save`` after its save
  transaction, so saves of audited models are wrapped in an atomic block (see
  :func:`install_transactional_saves`). A rolled-back change leaves no event and a failing event
  write fails the change.

Capture works in requests, shells, Celery tasks and commands alike. Inside a request the event
carries the request's user, address and brand; outside one the user is whoever
:func:`acting_user` names, else nobody. :func:`audit_ignore` suppresses capture in a block.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.db import models, router, transaction
from django.db.models.expressions import Combinable
from django.db.models.signals import m2m_changed, post_init, post_save, pre_delete

from auditlog import dbcapture

# The context variables live in auditlog.context; they are re-exported here, where callers
# have always found them.
from auditlog.context import (
    acting_user,
    audit_ignore,
    capture_is_ignored,
    current_actor,
    current_origin,
    current_request,
    event_origin,
    request_context,
)
from auditlog.models import EventAction
from auditlog.sanitize import mask_field_value, model_to_dict
from auditlog.services import record_event
from auditlog.triggers import relation_name
from project.loglevels import TRACE

__all__ = [
    "acting_user",
    "audit_ignore",
    "capture_is_ignored",
    "current_actor",
    "current_origin",
    "current_request",
    "event_origin",
    "request_context",
]

SNAPSHOT_ATTR = "_auditlog_snapshot"
CAPTURE_APP = "auditlog.capture"

# Models whose changes are not audited: the log itself, sessions, framework bookkeeping.
IGNORED_MODELS = frozenset(
    {
        "auditlog.event",
        "notifications.notification",
        "notifications.notificationdelivery",
        "auditlog.eventchainlink",
        "auditlog.eventchainpending",
        "auditlog.chaincheckpoint",
        "auditlog.eventrollup",  # the events' own hourly counts, kept by the sealer
        "auditlog.eventvolume",
        "exports.dataexport",
        "sessions.session",
        "contenttypes.contenttype",
        "auth.permission",
        "auth.group",
        "admin.logentry",
        "djangoql.query",
    }
)

_audited: set[type[models.Model]] = set()

logger = logging.getLogger(__name__)


def _trace(decision: str, instance: models.Model, **fields: Any) -> None:
    """Why a change was or was not recorded (``LOG_LEVEL=trace``); names, never values."""
    if logger.isEnabledFor(TRACE):
        fields = {"model": _label(type(instance)), "object_pk": str(instance.pk), **fields}
        logger.log(TRACE, "capture: %s", decision, extra=fields)


# --- Which models are audited ---------------------------------------------------------------


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def should_audit(model: type[models.Model]) -> bool:
    meta = model._meta
    if meta.abstract or meta.auto_created or not meta.managed:
        return False
    extra = {label.lower() for label in settings.AUDIT_IGNORE_MODELS}
    label = _label(model)
    concrete = _label(meta.concrete_model) if meta.concrete_model else label
    return label not in IGNORED_MODELS | extra and concrete not in IGNORED_MODELS | extra


def is_audited(model: type[models.Model]) -> bool:
    return model in _audited


def audited_models() -> set[type[models.Model]]:
    return set(_audited)


def connect() -> None:
    """Connect the receivers for every audited model (called from ``AppConfig.ready``)."""
    through_models: set[type[models.Model]] = set()
    for model in apps.get_models():
        if not should_audit(model):
            logger.log(TRACE, "capture: model not audited", extra={"model": _label(model)})
            continue
        _audited.add(model)
        uid = f"auditlog.capture.{_label(model)}"
        post_init.connect(_on_post_init, sender=model, dispatch_uid=uid)
        post_save.connect(_on_post_save, sender=model, dispatch_uid=uid)
        pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=uid)
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through is not None:
                through_models.add(through)
    for through in through_models:
        m2m_changed.connect(
            _on_m2m_changed, sender=through, dispatch_uid=f"auditlog.capture.{_label(through)}"
        )
    install_transactional_saves()


# --- The transactional save -----------------------------------------------------------------

_original_save_base = models.Model.save_base


def _transactional_save_base(self: models.Model, *args: Any, **kwargs: Any) -> Any:
    if type(self) not in _audited or capture_is_ignored():
        return _original_save_base(self, *args, **kwargs)
    using = kwargs.get("using") or (args[3] if len(args) > 3 else None)
    using = using or router.db_for_write(type(self), instance=self)
    if dbcapture.capturing(using):
        return _original_save_base(self, *args, **kwargs)  # the trigger writes in the statement
    # Without an enclosing transaction Django commits the row before post_save runs; wrapping
    # the save keeps the change and its event in one transaction (no savepoint when nested).
    with transaction.atomic(using=using, savepoint=False):
        return _original_save_base(self, *args, **kwargs)


def install_transactional_saves() -> None:
    models.Model.save_base = _transactional_save_base  # type: ignore[method-assign]


# --- Snapshots and diffs --------------------------------------------------------------------


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The instance's concrete field values (foreign keys as raw ids), without any query."""
    deferred = instance.get_deferred_fields()
    state: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.attname in deferred:
            continue
        value = instance.__dict__.get(field.attname)
        if isinstance(value, Combinable):  # F() and friends: the value is not known here
            continue
        if isinstance(value, dict | list):
            value = copy.deepcopy(value)
        state[field.name] = value
    return state


def build_diff(
    previous: dict[str, Any],
    current: dict[str, Any],
    update_fields: Any = None,
    *,
    created: bool = False,
) -> dict[str, dict[str, Any]]:
    """``{field: {previous_value, new_value}}`` for every field whose value changed.

    Values are compared raw and masked afterwards, so a changed password shows up (masked) as
    changed. Only ``update_fields`` are considered when given. On create, ``previous`` is empty
    and every non-null field is listed.
    """
    keys = set(current) | (set() if created else set(previous) & set(current))
    if update_fields:
        wanted = {_field_name_of(current, name) for name in update_fields}
        keys &= wanted
    diff: dict[str, dict[str, Any]] = {}
    for key in sorted(keys):
        old = None if created else previous.get(key)
        new = current.get(key)
        if (old == new and type(old) is type(new)) or _same_json(old, new):
            continue
        if created and new is None:
            continue
        diff[key] = {
            "previous_value": mask_field_value(key, old),
            "new_value": mask_field_value(key, new),
        }
    return diff


def _same_json(old: Any, new: Any) -> bool:
    """Whether two values would be stored as the same JSON (a UUID and its hex, a lazy string
    and its text): such a save changed nothing, and Sales -> Sales is no change."""
    if isinstance(old, dict | list) or isinstance(new, dict | list) or old is None or new is None:
        return False
    if type(old) in (bool, int, float) or type(new) in (bool, int, float):
        return False  # 1 and True, 1 and 1.0 are different JSON
    return str(_json_pk(old)) == str(_json_pk(new))


def _field_name_of(state: dict[str, Any], name: str) -> str:
    # update_fields may name a foreign key by its attname ("group_id").
    if name not in state and name.endswith("_id") and name[:-3] in state:
        return name[:-3]
    return name


def masked_state(state: dict[str, Any]) -> dict[str, Any]:
    return {key: mask_field_value(key, value) for key, value in state.items()}


# --- Receivers ------------------------------------------------------------------------------


def _on_post_init(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    instance.__dict__[SNAPSHOT_ATTR] = snapshot(instance)


def _on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    update_fields: Any = None,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    current = snapshot(instance)
    previous = instance.__dict__.get(SNAPSHOT_ATTR)
    if update_fields and previous is not None and not created:
        # Only the named fields reached the database; the rest of the snapshot still holds.
        names = {_field_name_of(current, name) for name in update_fields}
        current = {**previous, **{key: value for key, value in current.items() if key in names}}
    instance.__dict__[SNAPSHOT_ATTR] = current
    if raw or capture_is_ignored():
        reason = "raw save (fixture load)" if raw else "capture is ignored (audit_ignore)"
        _trace(f"not recorded: {reason}", instance)
        return
    if dbcapture.capturing(kwargs.get("using") or "default"):
        return  # the trigger recorded the change (and a password change)
    context: dict[str, Any] = {"model": model_to_dict(instance)}
    if created or previous is not None:
        diff = build_diff(previous or {}, current, update_fields, created=created)
        if diff:
            context["diff"] = diff
    is_user = _is_user_model(sender)
    if is_user and created:
        # What newer authentik records as user_created: the release the API targets writes
        # model_created (auditlog/compat.py), so the new user's details go into its context.
        context.update(_new_user_details(instance))
    action = EventAction.MODEL_CREATED if created else EventAction.MODEL_UPDATED
    _trace(f"recorded {action}", instance, changed_fields=sorted(context.get("diff", {})))
    record_event(action=action, app=CAPTURE_APP, context=context)
    if is_user and not created:
        _record_user_lifecycle(instance, previous, current)


def _is_user_model(model: type[models.Model]) -> bool:
    return model._meta.concrete_model._meta.label == settings.AUTH_USER_MODEL  # type: ignore[union-attr]


def _new_user_details(user: Any) -> dict[str, Any]:
    """Who the new user is (``subject_uuid``: GDPR erasure finds events about them) and how
    they were created."""
    return {
        "subject_uuid": user.uuid,
        "username": user.username,
        "user_type": user.type,
        "origin": current_origin(),
    }


def _record_user_lifecycle(
    user: Any, previous: dict[str, Any] | None, current: dict[str, Any]
) -> None:
    if (
        previous is not None
        and "password" in previous
        and previous["password"] != current.get("password")
    ):
        record_event(
            action=EventAction.PASSWORD_SET,
            app=CAPTURE_APP,
            context={"subject_uuid": user.uuid},
            user=user,
        )


def _on_pre_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    using = kwargs.get("using") or "default"
    if dbcapture.capturing(using):
        # The trigger records it; the rows of its many-to-many tables go with it.
        dbcapture.deleting(sender, instance.pk, using)
        return
    if capture_is_ignored():
        _trace("deletion not recorded: capture is ignored (audit_ignore)", instance)
        return
    _trace(f"recorded {EventAction.MODEL_DELETED}", instance)
    record_event(
        action=EventAction.MODEL_DELETED,
        app=CAPTURE_APP,
        context={"model": model_to_dict(instance), "model_state": masked_state(snapshot(instance))},
    )


_M2M_ACTIONS = {"pre_add": "add", "pre_remove": "remove", "post_clear": "clear"}
CLEARING_ATTR = "_auditlog_clearing"


def _json_pk(pk: Any) -> Any:
    return pk.hex if isinstance(pk, UUID) else pk


def _name_of(obj: models.Model) -> str:
    return str(getattr(obj, "username", None) or obj)


def _on_m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    model: type[models.Model] | None = None,
    pk_set: set[Any] | None = None,
    reverse: bool = False,
    **kwargs: Any,
) -> None:
    """A membership change, on both sides: an event for ``instance`` naming the related
    objects, and one for each related object naming ``instance``. The names are stored as they
    are now (``names``: pk -> name), so the change still reads by name after a deletion.
    On PostgreSQL with database capture the many-to-many table's triggers write these events;
    this receiver only tells them whose members change and whether it is a ``clear()``."""
    using = kwargs.get("using") or "default"
    if dbcapture.capturing(using):
        if action in ("pre_add", "pre_remove", "pre_clear"):
            clear = action == "pre_clear"
            dbcapture.changing_members(sender, instance, reverse=reverse, clear=clear, using=using)
        else:
            dbcapture.members_changed()
        return
    change = _M2M_ACTIONS.get(action)
    if capture_is_ignored() or type(instance) not in _audited:
        if change is not None:
            _trace(f"relation {change} not recorded: ignored or model not audited", instance)
        return
    if change is None and action != "pre_clear":
        return
    relation = relation_name(instance, sender)
    if relation is None:
        _trace(f"relation {change} not recorded: no relation field found", instance)
        return
    if action == "pre_clear" and model is not None:
        # The members are gone by post_clear; keep them to name them.
        instance.__dict__[CLEARING_ATTR] = list(getattr(instance, relation).all())
        return
    if change == "clear":
        related = instance.__dict__.pop(CLEARING_ATTR, [])
    elif not pk_set or model is None:
        return
    else:
        related = list(model._default_manager.filter(pk__in=pk_set))
    _trace(f"recorded relation {change}", instance, relation=relation)
    names = {str(_json_pk(obj.pk)): _name_of(obj) for obj in related}
    # The pks as a set; the redaction policy turns it into a sorted list like any other set.
    value: Any = {"clear": True} if change == "clear" else {change: set(pk_set or ())}
    record_event(
        action=EventAction.MODEL_UPDATED,
        app=CAPTURE_APP,
        context={"model": model_to_dict(instance), "diff": {relation: {**value, "names": names}}},
    )
    other_side = "remove" if change == "clear" else change
    for obj in related:
        theirs = relation_name(obj, sender) if type(obj) in _audited else None
        if theirs is None:
            continue
        record_event(
            action=EventAction.MODEL_UPDATED,
            app=CAPTURE_APP,
            context={
                "model": model_to_dict(obj),
                "diff": {
                    theirs: {
                        other_side: [instance.pk],
                        "names": {str(_json_pk(instance.pk)): _name_of(instance)},
                    }
                },
            },
        )
