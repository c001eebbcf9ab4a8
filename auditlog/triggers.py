"""Database-side capture on PostgreSQL: the triggers that record every change of an audited
model, whoever makes it (``save()``, ``QuerySet.update()``, bulk operations, raw SQL, ``psql``).

For every audited model three statement-level ``AFTER`` triggers (insert, update, delete) are
declared with django-pgtrigger (many-to-many changes stay the signal path's, see
:func:`register`). Each trigger writes, in the same statement's transaction, the event the
signal capture (:mod:`auditlog.capture`) would write, field for field:

* ``context.model`` (app, model_name, pk as JSON, name), ``diff`` of the changed fields only
  (``{field: {previous_value, new_value}}``), ``model_state`` on delete, a user's
  ``password_set``;
* the columns the redaction policy calls secret (:func:`auditlog.sanitize.is_secret_key` on the
  field name) are masked in the generated SQL: the policy decides them when the triggers are
  generated, so a change of the policy changes the triggers' SQL and hash; ``manage.py migrate``
  reinstalls them and the ``auditlog.W020`` check reports triggers that are missing or outdated;
* who acted, the address, brand, ``http_request``, geo and request id come from the request
  context the application hands over with the statement (:mod:`auditlog.dbcapture`); without
  it (a ``psql`` session, another program) the event names the database user and says
  ``context.source = "database"``.

The trigger function is the second door into the events table (after
:mod:`auditlog.services`): it exists so that no change escapes the record, and it writes only
capture events. ``tests/auditlog/test_no_other_way_in.py`` allows its SQL and nothing else.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.conf import settings
from django.core import checks
from django.db import connections, models
from pgtrigger.core import INSTALLED

from auditlog.sanitize import MASK, is_secret_key, secret_kind_number
from directory.models import ANONYMOUS_USERNAME

CAPTURE_APP = "auditlog.capture"
SETTING = "auditlog.context"  # the transaction-local setting that carries the request context
# The application's id for the statement it hands over (a UUID's hex); the trigger names its
# events after it (EVENT_TAGS), so that the application knows a single-row change's event pk
# without asking, and logs it. The trigger clears it once read: it names one statement only.
STATEMENT_SETTING = "auditlog.statement"
EVENT_TAGS = {"model_created": "c", "model_updated": "u", "model_deleted": "d", "password_set": "p"}
TRIGGER_PREFIX = "auditlog_"
# How Django's default __str__ and the audited models' own name themselves, as SQL over the
# row alias ``{r}``; a model with a ``name`` field uses it first, as model_to_dict does.
STR_SQL: dict[str, str] = {
    "directory.user": "{r}.username",
    "directory.token": "{r}.identifier",
    "directory.group": "{r}.name",
    "directory.brand": "{r}.name",
    "sources.authentiksource": "{r}.name",
    "auditlog.systemsettings": "'System settings'",
    "notifications.notificationtransport": "'Notification Transport ' || {r}.name",
    "notifications.notificationrule": "'Notification Rule ' || {r}.name",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- Values as the signal path's JSON --------------------------------------------------------


def _kind_sql(name: str) -> str:
    """The policy's kind of a key, as the SQL functions number it: NULL readable, 1 secret,
    2 a session (whose id is the secret too)."""
    kind = secret_kind_number(name)
    return "NULL" if kind is None else str(kind)


def _value_sql(field: models.Field[Any, Any], ref: str, depth: int) -> str:
    """The JSON the signal path stores for ``field``'s raw value ``ref`` (after sanitising):
    UUIDs as hex, datetimes ISO 8601 with ``Z``, text through the credential masks, JSON
    through the key masks (``depth``: how deep Python's policy meets the value in the event's
    context, which decides where a deeply nested value is cut)."""
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    kind = target.get_internal_type()
    if kind == "UUIDField":
        return f"to_jsonb(replace({ref}::text, '-', ''))"
    if kind == "DateTimeField":
        return f"to_jsonb(auditlog_iso({ref}))"
    if kind in ("DateField", "TimeField"):
        return f"to_jsonb({ref}::text)"
    if kind in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return f"to_jsonb(auditlog_mask_text({ref}))"
    if kind == "JSONField":
        return f"auditlog_mask_json({ref}::jsonb, {_kind_sql(field.name)}::smallint, {depth})"
    if kind == "DecimalField":
        return f"to_jsonb({ref}::text)"
    return f"to_jsonb({ref})"


def _field_sql(field: models.Field[Any, Any], alias: str, depth: int = 3) -> str:
    """A field's value in the event (a diff's values sit three levels deep in the context,
    ``diff.<field>.new_value``; a deleted row's state two, ``model_state.<field>``)."""
    ref = f"{alias}.{_ident(field.column)}"
    value = _value_sql(field, ref, depth)
    if is_secret_key(field.name) and field.get_internal_type() != "JSONField":
        # The policy, applied when the trigger is generated; a mapping under a secret name is
        # masked inside (as Python does), the rest whole.
        return f"CASE WHEN {ref} IS NULL THEN 'null'::jsonb ELSE to_jsonb({_quote(MASK)}::text) END"
    return f"COALESCE({value}, 'null'::jsonb)"


def model_ref_sql(model: type[models.Model], alias: str) -> str:
    """``{app, model_name, pk, name}`` of the row ``alias``, as :func:`model_to_dict` gives."""
    meta = model._meta
    label = meta.label_lower
    own = STR_SQL.get(label)
    if own is None:
        pk_text = f"{alias}.{_ident(meta.pk.column)}::text"  # type: ignore[union-attr]
        own = f"{_quote(f'{meta.object_name} object (')} || {pk_text} || ')'"
    else:
        own = own.format(r=alias)
    names = {field.name for field in meta.concrete_fields}
    if "name" in names:
        own = f"COALESCE(NULLIF({alias}.name::text, ''), {own})"
    return (
        f"jsonb_build_object('app', {_quote(meta.app_label)}, 'model_name', "
        f"{_quote(meta.model_name or '')}, 'pk', {_field_sql(meta.pk, alias)}, "  # type: ignore[arg-type]
        f"'name', auditlog_mask_text({own}))"
    )


# --- The statements each trigger runs --------------------------------------------------------

_INSERT_HEAD = (
    'INSERT INTO auditlog_event (event_uuid, "user", action, app, context, client_ip, created, '
    "brand, expires, expiring) "
)


def _insert_events(
    action: str, context_sql: str, from_sql: str, *, user: str = "c_user", now: str = "c_now"
) -> str:
    """The one statement that writes capture events: a row per captured change."""
    # The n-th event of the statement is md5(statement id, tag, n) (see STATEMENT_SETTING);
    # without an id (psql, another program), a random UUID.
    tag = _quote(EVENT_TAGS[action])
    event_uuid = (
        f"CASE WHEN c_stmt = '' THEN gen_random_uuid() "
        f"ELSE md5(c_stmt || {tag} || row_number() OVER ())::uuid END"
    )
    return (
        _INSERT_HEAD + f"SELECT {event_uuid}, {user}, {_quote(action)}, {_quote(CAPTURE_APP)}, "
        f"c_context || {context_sql}, c_ip, {now}, c_brand, {now} + c_ttl, true {from_sql};"
    )


# Once per statement: the context, read and taken apart (every row of the statement shares it).
_GUARD = (
    "ctx := auditlog_capture_context(); IF (ctx->>'ignore')::boolean THEN RETURN NULL; END IF; "
    "c_user := ctx->'user'; c_context := ctx->'context'; c_brand := ctx->'brand'; "
    "c_ip := (ctx->>'client_ip')::inet; c_now := clock_timestamp(); "
    "c_ttl := make_interval(secs => (ctx->>'expires_in')::float8); "
    f"c_stmt := COALESCE(current_setting('{STATEMENT_SETTING}', true), ''); "
    f"IF c_stmt <> '' THEN PERFORM set_config('{STATEMENT_SETTING}', '', true); END IF;"
)
DECLARE = [
    ("ctx", "jsonb"),
    ("c_user", "jsonb"),
    ("c_context", "jsonb"),
    ("c_brand", "jsonb"),
    ("c_ip", "inet"),
    ("c_now", "timestamptz"),
    ("c_ttl", "interval"),
    ("c_stmt", "text"),
]


def _diff_sql(model: type[models.Model], old: str | None, new: str) -> str:
    parts = []
    for field in model._meta.concrete_fields:
        if old is None:  # created: every field that has a value
            changed = f"n.{_ident(field.column)} IS NOT NULL"
            previous = "'null'::jsonb"
        else:
            changed = f"o.{_ident(field.column)} IS DISTINCT FROM n.{_ident(field.column)}"
            previous = _field_sql(field, old)
        parts.append(
            f"({_quote(field.name)}, CASE WHEN {changed} THEN jsonb_build_object("
            f"'previous_value', {previous}, 'new_value', {_field_sql(field, new)}) END)"
        )
    # {"diff": {...}} when a field changed, else '{}' (the signal path leaves "diff" out).
    return (  # generated from the models' metadata, never from input
        "COALESCE((SELECT jsonb_build_object('diff', jsonb_object_agg(k, v)) FROM (VALUES "  # noqa: S608
        + ", ".join(parts)
        + ") AS d(k, v) WHERE v IS NOT NULL HAVING count(*) > 0), '{}'::jsonb)"
    )


def _state_sql(model: type[models.Model], alias: str) -> str:
    items = [
        f"jsonb_build_object({_quote(field.name)}, {_field_sql(field, alias, depth=2)})"
        for field in model._meta.concrete_fields
    ]
    return "(" + " || ".join(items) + ")" if items else "'{}'::jsonb"


def _is_user(model: type[models.Model]) -> bool:
    return model._meta.concrete_model._meta.label == settings.AUTH_USER_MODEL  # type: ignore[union-attr]


def _created_func(model: type[models.Model]) -> str:
    ref = model_ref_sql(model, "n")
    diff = _diff_sql(model, None, "n")
    extra = ""
    if _is_user(model):  # what the signal path adds to a new user's model_created
        extra = (
            " || jsonb_build_object('subject_uuid', replace(n.uuid::text, '-', ''), "
            "'username', auditlog_mask_text(n.username), 'user_type', n.type, "
            "'origin', COALESCE(ctx->>'origin', 'unknown'))"
        )
    context = f"jsonb_build_object('model', {ref}) || {diff}{extra}"
    return _GUARD + _insert_events("model_created", context, "FROM new_rows n") + " RETURN NULL;"


def _updated_func(model: type[models.Model]) -> str:
    pk = _ident(model._meta.pk.column)  # type: ignore[union-attr]
    ref = model_ref_sql(model, "n")
    diff = _diff_sql(model, "o", "n")
    context = f"jsonb_build_object('model', {ref}) || {diff}"
    source = f"FROM old_rows o JOIN new_rows n ON o.{pk} = n.{pk}"
    body = _GUARD + _insert_events("model_updated", context, source)
    if _is_user(model):
        # The signal path's password_set, by the user themselves, after the model_updated:
        # here too, so that a user's save needs no transaction of its own.
        subject = (
            "jsonb_build_object('username', auditlog_mask_text(n.username), 'pk', n.id, "
            "'email', auditlog_mask_text(COALESCE(n.email, ''))) || CASE WHEN n.username = "
            f"{_quote(ANONYMOUS_USERNAME)} THEN '{{\"is_anonymous\": true}}'::jsonb "
            "ELSE '{}'::jsonb END"
        )
        body += _insert_events(
            "password_set",
            "jsonb_build_object('subject_uuid', replace(n.uuid::text, '-', ''))",
            source + " WHERE o.password IS DISTINCT FROM n.password",
            user=subject,
            now="clock_timestamp()",
        )
    return body + " RETURN NULL;"


def _deleted_func(model: type[models.Model]) -> str:
    context = (
        f"jsonb_build_object('model', {model_ref_sql(model, 'o')}, "
        f"'model_state', {_state_sql(model, 'o')})"
    )
    return _GUARD + _insert_events("model_deleted", context, "FROM old_rows o") + " RETURN NULL;"


# --- Declaring the triggers ---------------------------------------------------------------------


def _trigger(name: str, operation: Any, func: str, referencing: Any) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=TRIGGER_PREFIX + name,
        when=pgtrigger.After,
        operation=operation,
        level=pgtrigger.Statement,
        referencing=referencing,
        declare=DECLARE,
        func=func,
    )


def model_triggers(model: type[models.Model]) -> list[pgtrigger.Trigger]:
    return [
        _trigger(
            "insert", pgtrigger.Insert, _created_func(model), pgtrigger.Referencing(new="new_rows")
        ),
        _trigger(
            "update",
            pgtrigger.Update,
            _updated_func(model),
            pgtrigger.Referencing(old="old_rows", new="new_rows"),
        ),
        _trigger(
            "delete", pgtrigger.Delete, _deleted_func(model), pgtrigger.Referencing(old="old_rows")
        ),
    ]


_registered: list[tuple[Any, pgtrigger.Trigger]] = []  # (model class, trigger)


def register(audited: set[type[models.Model]]) -> None:
    """Declare the capture triggers of every audited model and many-to-many table with
    django-pgtrigger (installed by ``migrate``; ``manage.py pgtrigger ls`` lists them)."""
    if _registered:
        return
    model: Any
    for model in sorted(audited, key=lambda item: item._meta.label):
        for trigger in model_triggers(model):
            trigger.register(model)
            _registered.append((model, trigger))
        # Many-to-many tables: not registered. Membership events name the objects on both
        # sides by their Python str() (auditlog/capture.py), which SQL cannot reproduce for
        # every model (permissions); the signal path records them on both databases, and a
        # membership change made by raw SQL is not captured yet (see README).


def registered() -> list[tuple[Any, pgtrigger.Trigger]]:
    return list(_registered)


def audited_tables() -> set[str]:
    return {model._meta.db_table for model, _ in _registered}


@checks.register(checks.Tags.database)
def check_triggers(app_configs: Any = None, databases: Any = None, **_: Any) -> list[Any]:
    """``auditlog.W020``: a capture trigger is missing or differs from what the redaction
    policy and the models generate now (run ``manage.py migrate`` to reinstall them)."""
    problems: list[Any] = []
    for alias in databases or []:
        if connections[alias].vendor != "postgresql":
            continue
        for model, trigger in _registered:
            status, _enabled = trigger.get_installation_status(model, database=alias)
            if status != INSTALLED:
                problems.append(
                    checks.Warning(
                        f"Capture trigger {trigger.get_uri(model)} is {status} on {alias!r}.",
                        hint="Run manage.py migrate (or manage.py pgtrigger install).",
                        id="auditlog.W020",
                    )
                )
    return problems
