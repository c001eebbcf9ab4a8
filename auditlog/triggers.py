"""Database-side capture on PostgreSQL: the triggers that record every change of an audited
model, whoever makes it (``save()``, ``QuerySet.update()``, bulk operations, raw SQL, ``psql``).

For every audited model three statement-level ``AFTER`` triggers (insert, update, delete) are
declared with django-pgtrigger, and two (insert, delete) for the auto-created table of each of
its many-to-many fields. Each trigger writes, in the same statement's transaction, the events
the signal capture (:mod:`auditlog.capture`) would write, field for field:

* ``context.model`` (app, model_name, pk as JSON, name), ``diff`` of the changed fields only
  (``{field: {previous_value, new_value}}``), ``model_state`` on delete, a user's
  ``password_set``;
* a membership change on both sides: for each object whose rows changed, ``{relation: {add |
  remove: [pks], names: {pk: str()}}}`` (``clear: true`` for the object the application
  clears, which it says with the statement), the changed object's event first; the names are
  Python's ``str()`` as SQL (:data:`STR_SQL`, a permission's labels written in when the
  triggers are generated); rows that go with a deleted object are no membership change;
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

Longer than 500 lines on purpose: the SQL of every capture trigger is generated here, around
that one ``INSERT``, from the models' metadata and the redaction policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pgtrigger
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connections, models
from django.utils import translation
from pgtrigger.core import INSTALLED

from auditlog.sanitize import MASK, is_secret_key, sanitize, secret_kind_number
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
    "searches.savedsearch": "'Saved search ' || {r}.name",
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


def _value_sql(field: models.Field[Any, Any], ref: str, depth: int = 3) -> str:
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


def str_sql(model: type[models.Model], alias: str) -> str:
    """Python's ``str()`` of the row ``alias``: the model's own ``__str__`` as SQL, else
    Django's default ``"<Model> object (<pk>)"``."""
    meta = model._meta
    if meta.label_lower == "auth.permission":
        return _permission_str_sql(alias)
    own = STR_SQL.get(meta.label_lower)
    if own is not None:
        return own.format(r=alias)
    pk_text = f"{alias}.{_ident(meta.pk.column)}::text"  # type: ignore[union-attr]
    return f"{_quote(f'{meta.object_name} object (')} || {pk_text} || ')'"


def _permission_str_sql(alias: str) -> str:
    """A permission's ``str()``: ``"<app verbose_name> | <model verbose_name> | <name>"``, and
    ``"<model> | <name>"`` for a content type whose model is gone (Django's
    ``ContentType.app_labeled_name``). The labels of the installed models are written into
    the SQL (in ``LANGUAGE_CODE``): a renamed model or app changes the trigger, as the policy
    does."""
    rows = []
    with translation.override(settings.LANGUAGE_CODE):
        for model in apps.get_models(include_auto_created=True, include_swapped=True):
            meta = model._meta
            label = f"{meta.app_config.verbose_name} | {meta.verbose_name}"  # type: ignore[union-attr]
            rows.append(
                f"({_quote(meta.app_label)}, {_quote(meta.model_name or '')}, {_quote(label)})"
            )
    values = ", ".join(sorted(rows))
    return (  # generated from the installed models, never from input
        "(SELECT COALESCE(l.label, t.model) FROM django_content_type t LEFT JOIN (VALUES "  # noqa: S608
        f"{values}) AS l(app_label, model, label) ON l.app_label = t.app_label "
        f"AND l.model = lower(t.model) WHERE t.id = {alias}.content_type_id) || ' | ' || "
        f"{alias}.name"
    )


def model_ref_sql(model: type[models.Model], alias: str) -> str:
    """``{app, model_name, pk, name}`` of the row ``alias``, as :func:`model_to_dict` gives."""
    meta = model._meta
    own = str_sql(model, alias)
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
    action: str,
    context_sql: str,
    from_sql: str,
    *,
    user: str = "c_user",
    now: str = "c_now",
    tag: str | None = None,
) -> str:
    """The one statement that writes capture events: a row per captured change."""
    # The n-th event of the statement is md5(statement id, tag, n) (see STATEMENT_SETTING; a
    # trigger with two INSERTs of one action gives each its own tag); without an id (psql,
    # another program), a random UUID.
    tag = _quote(tag or EVENT_TAGS[action])
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
        changed = source + " WHERE o.password IS DISTINCT FROM n.password"
        # Only when a password changed: an INSERT of no rows still runs the events table's
        # statement triggers.
        body += (
            f"IF EXISTS (SELECT 1 {changed}) THEN "
            + _insert_events(
                "password_set",
                "jsonb_build_object('subject_uuid', replace(n.uuid::text, '-', ''))",
                changed,
                user=subject,
                now="clock_timestamp()",
            )
            + " END IF;"
        )
    return body + " RETURN NULL;"


def _deleted_func(model: type[models.Model]) -> str:
    context = (
        f"jsonb_build_object('model', {model_ref_sql(model, 'o')}, "
        f"'model_state', {_state_sql(model, 'o')})"
    )
    return _GUARD + _insert_events("model_deleted", context, "FROM old_rows o") + " RETURN NULL;"


# --- Many-to-many tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class End:
    """One end of a many-to-many table: its model, the table's foreign key to it, and the
    relation's name as seen from it (``None``: no events for this end's objects)."""

    model: type[models.Model]
    fk: Any
    relation: str | None


def relation_name(model: Any, through: type[models.Model]) -> str | None:
    """The name of the many-to-many relation that uses ``through``, as seen from ``model`` (a
    model or an instance): the field's name, or the accessor on the other side."""
    for field in model._meta.get_fields():
        if field.many_to_many:
            if getattr(field.remote_field, "through", None) is through:
                return str(field.name)
            if getattr(field, "through", None) is through:
                return field.get_accessor_name()  # type: ignore[no-any-return]
    return None


def membership_ends(field: Any, audited: set[type[models.Model]]) -> tuple[End, End]:
    """The declaring end and the other end of ``field``'s auto-created table."""
    through = field.remote_field.through
    other = field.related_model
    return (
        End(field.model, through._meta.get_field(field.m2m_field_name()), field.name),
        End(
            other,
            through._meta.get_field(field.m2m_reverse_field_name()),
            relation_name(other, through) if other in audited else None,
        ),
    )


def _ordering_sql(model: type[models.Model], alias: str) -> str:
    """The model's ``Meta.ordering`` (plain fields), as the signal path's query orders the
    related objects whose events it writes; then the pk."""
    meta = model._meta
    fields = {field.name: field for field in meta.concrete_fields if not field.is_relation}
    fields["pk"] = meta.pk  # type: ignore[assignment]
    parts = []
    for item in meta.ordering or ():
        field = fields.get(item.lstrip("-")) if isinstance(item, str) else None
        if field is None:
            break
        parts.append(f"{alias}.{_ident(field.column)}{' DESC' if item[0] == '-' else ''}")
    return ", ".join([*parts, f"{alias}.{_ident(meta.pk.column)}"])  # type: ignore[union-attr]


def _not_deleting(end: End, ref: str) -> str:
    # The rows that go with an object being deleted are no membership change (the signal
    # path records none): the application names the objects it deletes (dbcapture).
    table = _quote(end.model._meta.db_table)
    return (
        f"NOT EXISTS (SELECT FROM jsonb_array_elements_text(ctx->'deleting'->{table}) d(pk) "
        f"WHERE d.pk = {ref}::text)"
    )


def _members_sql(end: End, other: End, change: str) -> str:
    """One ``model_updated`` per object of ``end`` whose rows the statement changed, listing
    the other end's pks (sorted as Python sorts them) and names (Python's ``str()``)."""
    meta, theirs = end.model._meta, other.model._meta
    own, ref = f"r.{_ident(end.fk.column)}", f"r.{_ident(other.fk.column)}"
    pk = _value_sql(other.fk, ref)
    key = f"{pk} #>> '{{}}'"
    # Python sorts text pks by code point, as the "C" collation does.
    text_pk = other.fk.target_field.get_internal_type() in ("CharField", "TextField")
    order = ref + (' COLLATE "C"' if text_pk else "")
    name = str_sql(other.model, "o")
    if "username" in {field.name for field in theirs.concrete_fields}:  # as capture._name_of
        name = f"COALESCE(NULLIF(o.username, ''), {name})"
    name = f"auditlog_mask_text({name})"
    probe = {"diff": {end.relation: {"add": [1], "clear": True, "names": {"1": "a readable name"}}}}
    if sanitize(probe) != probe:  # the policy masks inside this relation's entries: all of it
        pk, name = f"to_jsonb({_quote(MASK)}::text)", _quote(MASK)
    entry = "jsonb_build_object('add', g.pks, 'names', g.names)"
    rows, where = "new_rows", ""
    if change == "remove":
        rows = "old_rows"
        where = f"WHERE {_not_deleting(end, own)} AND {_not_deleting(other, ref)} "
        # clear() of this object: the application says so with the statement.
        cleared = (
            f"m2m->>'column' = {_quote(end.fk.column)} AND (m2m->>'clear')::boolean "
            f"AND m2m->'pk' = {_value_sql(end.fk, 'g.id')}"
        )
        entry = (
            f"CASE WHEN {cleared} THEN jsonb_build_object('clear', true, 'names', g.names) "
            f"ELSE jsonb_build_object('remove', g.pks, 'names', g.names) END"
        )
    context = (
        f"jsonb_build_object('model', {model_ref_sql(end.model, 'm')}, "
        f"'diff', jsonb_build_object({_quote(end.relation or '')}, {entry}))"
    )
    source = (  # generated from the models' metadata, never from input
        f"FROM (SELECT {own} AS id, jsonb_agg({pk} ORDER BY {order}) AS pks, "  # noqa: S608
        f"COALESCE(jsonb_object_agg({key}, {name}) FILTER (WHERE o.{_ident(theirs.pk.column)} "  # type: ignore[union-attr]
        f"IS NOT NULL), '{{}}') AS names FROM {rows} r LEFT JOIN {_ident(theirs.db_table)} o "
        f"ON o.{_ident(theirs.pk.column)} = {ref} {where}GROUP BY {own}) g "  # type: ignore[union-attr]
        f"JOIN {_ident(meta.db_table)} m ON m.{_ident(meta.pk.column)} = g.id "  # type: ignore[union-attr]
        f"ORDER BY {_ordering_sql(end.model, 'm')}"
    )
    # A time per event, taken in that order: the events read in the signal path's order.
    return _insert_events(
        "model_updated", context, source, now="clock_timestamp()", tag=f"m:{end.fk.column}"
    )


def _membership_func(through: type[models.Model], ends: tuple[End, End], change: str) -> str:
    """The events of both ends, the end the application changed from first (as the signal
    path writes them), else the declaring end first."""
    table = _quote(through._meta.db_table)
    source, target = ends
    body = _GUARD + f"m2m := CASE WHEN ctx->'m2m'->>'table' = {table} THEN ctx->'m2m' END; "
    forward = _members_sql(source, target, change) if source.relation else ""
    backward = _members_sql(target, source, change) if target.relation else ""
    if forward and backward:
        body += (
            f"IF m2m->>'column' = {_quote(target.fk.column)} THEN {backward} {forward} "
            f"ELSE {forward} {backward} END IF;"
        )
    else:
        body += forward + backward
    return body + " RETURN NULL;"


# --- Declaring the triggers ---------------------------------------------------------------------


def _trigger(
    name: str, operation: Any, func: str, referencing: Any, declare: list[tuple[str, str]] = DECLARE
) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=TRIGGER_PREFIX + name,
        when=pgtrigger.After,
        operation=operation,
        level=pgtrigger.Statement,
        referencing=referencing,
        declare=declare,
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


def membership_triggers(through: Any, ends: tuple[End, End]) -> list[pgtrigger.Trigger]:
    """A many-to-many table's two triggers: rows inserted (``add``) and deleted (``remove``,
    or ``clear`` when the application says so)."""
    declare = [*DECLARE, ("m2m", "jsonb")]
    add, remove = (_membership_func(through, ends, change) for change in ("add", "remove"))
    return [
        _trigger("insert", pgtrigger.Insert, add, pgtrigger.Referencing(new="new_rows"), declare),
        _trigger(
            "delete", pgtrigger.Delete, remove, pgtrigger.Referencing(old="old_rows"), declare
        ),
    ]


_registered: list[tuple[Any, pgtrigger.Trigger]] = []  # (model class, trigger)
_memberships: dict[Any, tuple[End, End]] = {}  # auto-created many-to-many table -> its ends


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
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if not through._meta.auto_created or through in _memberships:
                continue
            _memberships[through] = ends = membership_ends(field, audited)
            for trigger in membership_triggers(through, ends):
                trigger.register(through)
                _registered.append((through, trigger))


def membership_tables() -> list[str]:
    return [through._meta.db_table for through in _memberships]


def membership_columns(through: type[models.Model]) -> tuple[str, str] | None:
    """The columns of a captured many-to-many table: the declaring end's, the other end's."""
    ends = _memberships.get(through)
    return None if ends is None else (ends[0].fk.column, ends[1].fk.column)


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
