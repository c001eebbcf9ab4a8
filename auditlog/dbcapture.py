"""The application's half of database-side capture (PostgreSQL): the SQL helpers the triggers
of :mod:`auditlog.triggers` call, and the request context handed to them.

The context reaches the trigger without an extra round trip: a connection execute wrapper
prefixes each ``INSERT``/``UPDATE``/``DELETE`` on an audited table with
``SELECT set_config('auditlog.context', '<json>', true);`` in the same query string
(django-pghistory's approach). The JSON holds what :func:`auditlog.services.build_event`
would put in the event from the current request, acting user and brand (user, client IP, brand,
``http_request`` with the request id, geo and ASN, all redacted), the retention, the origin of
new users, and whether :func:`~auditlog.context.audit_ignore` is on; it is built once per
request and user. A statement without it (``psql``, another program) is recorded with the
database user and ``context.source = "database"`` (see ``auditlog_capture_context``).

Two hints from the capture's receivers ride along for the many-to-many tables' triggers: whose
members the ORM's next statement on a table changes and whether it is a ``clear()`` (``m2m``,
from ``m2m_changed``), and which audited objects are being deleted, whose rows go with them
(``deleting``, from ``pre_delete``). Each lapses with the atomic block it was given in.

On SQLite, or with ``AUDIT_DB_CAPTURE=false``, the signals of :mod:`auditlog.capture` record
changes instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

from auditlog import dbfunctions, triggers
from auditlog.context import capture_is_ignored, current_actor, current_origin, current_request
from directory.models import ANONYMOUS_USERNAME, User
from project.loglevels import TRACE

_DML = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_DELETE = re.compile(r"\s*DELETE\b", re.IGNORECASE)
IGNORE = '{"ignore": true}'  # the context that tells the triggers to record nothing
_tables: re.Pattern[str] | None = None
_migrating = False  # no triggers are installed while migrate runs; nothing to hand over
CACHE_ATTR = "_auditlog_db_context"
logger = logging.getLogger("auditlog.services")  # the events' own log lines, whichever door
trace_logger = logging.getLogger("auditlog.capture")  # why a change was or was not recorded


def capturing(using: str = "default") -> bool:
    """Whether the triggers, not the signals, record the changes made through ``using``."""
    return settings.AUDIT_DB_CAPTURE and connections[using].vendor == "postgresql"


# --- What the application tells the trigger ---------------------------------------------------


@contextmanager
def _anonymous_without_writing(request: Any) -> Iterator[None]:
    """Building the context must not write: an anonymous visitor's stand-in user is created
    on first use, and that INSERT may be the very statement whose context is being built. So
    the stand-in is only looked up here (none yet: the event has no user)."""
    user = getattr(request, "user", None) if request is not None else None
    if user is None or not getattr(user, "is_anonymous", False) or isinstance(user, User):
        yield
        return
    request.user = User.objects.filter(username=ANONYMOUS_USERNAME).first()
    try:
        yield
    finally:
        request.user = user


def _base_context() -> dict[str, Any]:
    from auditlog.models import EventAction, current_retention
    from auditlog.services import build_event

    with _anonymous_without_writing(current_request()):
        event = build_event(action=EventAction.MODEL_UPDATED, app=triggers.CAPTURE_APP, context={})
    return {
        "user": event.user,
        "client_ip": event.client_ip,
        "brand": event.brand,
        "context": event.context,
        "expires_in": current_retention().total_seconds(),
        "origin": current_origin(),
    }


# Set while the context is being built: building it may itself write to an audited table
# (the anonymous user is created on first use), whose statement must not build it again.
_building: ContextVar[bool] = ContextVar("auditlog_dbcapture_building", default=False)


def context_json() -> str:
    """The JSON handed to the trigger with each statement (cached per request and user)."""
    if capture_is_ignored() or _building.get():
        # Re-entered: a row written while the context is built (the anonymous user's own
        # creation) is left out rather than recursing without end.
        return IGNORE
    request = current_request()
    actor = current_actor()
    key = (id(getattr(request, "user", None)), id(actor), current_origin())
    cached = getattr(request, CACHE_ATTR, None) if request is not None else None
    if cached is not None and cached[0] == key:
        return str(cached[1])
    token = _building.set(True)
    try:
        text = orjson.dumps(_base_context()).decode()
    finally:
        _building.reset(token)
    if request is not None:
        setattr(request, CACHE_ATTR, (key, text))
    return text


# --- What the receivers tell the many-to-many triggers ----------------------------------------
# Each hint holds the atomic block the ORM runs the change in (add(), remove() and clear() run
# in one, a deletion too) and lapses with it, so a change that fails half-way leaves none.

_membership: ContextVar[tuple[Any, str, str] | None] = ContextVar(
    "auditlog_dbcapture_membership", default=None
)
_deleting: ContextVar[tuple[tuple[Any, str, str], ...]] = ContextVar(
    "auditlog_dbcapture_deleting", default=()
)


def _block(using: str) -> Any:
    blocks = connections[using].atomic_blocks
    return blocks[-1] if blocks else None


def changing_members(
    through: Any, instance: Any, *, reverse: bool, clear: bool, using: str = "default"
) -> None:
    """Before the ORM's statement on a many-to-many table: whose members change (the
    triggers write that object's event first, as the signal path does) and whether the
    statement is its ``clear()``."""
    columns = triggers.membership_columns(through)
    if columns is None:
        return
    pk = instance.pk.hex if isinstance(instance.pk, UUID) else instance.pk
    column = columns[1] if reverse else columns[0]
    hint = {"table": through._meta.db_table, "column": column, "pk": pk}
    _membership.set((_block(using), hint["table"], orjson.dumps({**hint, "clear": clear}).decode()))


def members_changed() -> None:
    _membership.set(None)


def deleting(model: Any, pk: Any, using: str = "default") -> None:
    """An audited object is being deleted: the rows of many-to-many tables that go with it are
    not membership changes (the signal path records none)."""
    _deleting.set((*_deleting.get(), (_block(using), model._meta.db_table, str(pk))))


def _with_hints(text: str, sql: str, connection: Any) -> str:
    """The statement's context with the hints that still hold (their atomic block is open)."""
    open_blocks = connection.atomic_blocks
    extra: dict[str, Any] = {}
    membership = _membership.get()
    if membership is not None and not any(block is membership[0] for block in open_blocks):
        _membership.set(None)
    elif membership is not None and membership[1] in sql:
        extra["m2m"] = orjson.Fragment(membership[2])
    doomed = _deleting.get()
    # Only the many-to-many tables' delete triggers read it (a deletion of many objects runs
    # many statements).
    if (
        doomed
        and _DELETE.match(sql)
        and any(table in sql for table in triggers.membership_tables())
    ):
        doomed = tuple(item for item in doomed if any(b is item[0] for b in open_blocks))
        _deleting.set(doomed)
        by_table: dict[str, list[str]] = {}
        for _, table, pk in doomed:
            by_table.setdefault(table, []).append(pk)
        if by_table:
            extra["deleting"] = by_table
    if not extra or not text.endswith("}"):
        return text
    return text[:-1] + "," + orjson.dumps(extra).decode()[1:]


# --- The execute wrapper ------------------------------------------------------------------------


def _audited_statement(sql: str) -> tuple[str, str] | None:
    """``(verb, table)`` of an ``INSERT``/``UPDATE``/``DELETE`` naming an audited table (the
    first it names), else ``None``."""
    global _tables
    verb = _DML.match(sql)
    if verb is None:
        return None
    if _tables is None:
        names = sorted(triggers.audited_tables(), key=len, reverse=True)
        _tables = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
    table = _tables.search(sql)
    return None if table is None else (verb.group(1).lower(), table.group(0))


def _errored(connection: Any) -> bool:
    import psycopg

    raw = connection.connection
    return raw is not None and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def execute_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    connection = context["connection"]
    audited = None if _migrating or not isinstance(sql, str) else _audited_statement(sql)
    if audited is None or connection.vendor != "postgresql" or _errored(connection):
        return execute(sql, params, many, context)
    # With the signal path chosen (AUDIT_DB_CAPTURE=false), installed triggers stay quiet.
    text = context_json() if settings.AUDIT_DB_CAPTURE else IGNORE
    recorded = text != IGNORE
    if recorded:
        text = _with_hints(text, sql, connection)
    literal = "'" + text.replace("'", "''") + "'"
    statement = uuid.uuid4().hex
    prefix = (
        f"SELECT set_config('{triggers.SETTING}', {literal}, true), "
        f"set_config('{triggers.STATEMENT_SETTING}', '{statement}', true); "
    )
    from auditlog.chain.sealing import request_seal

    request_seal()  # the trigger's events are sealed like the service's
    if many:  # several statements per query string do not mix with executemany
        context["cursor"].cursor.execute(prefix)
        return execute(sql, params, many, context)
    if params is not None:
        prefix = prefix.replace("%", "%%")
    result = execute(prefix + sql, params, many, context)
    # psycopg 3 stays on the first statement's result; the caller wants the last one's.
    while result is not None and result.nextset():
        pass
    _log_captured(*audited, statement, context["cursor"].cursor.rowcount, recorded=recorded)
    return result


_ACTIONS = {"insert": "model_created", "update": "model_updated", "delete": "model_deleted"}


def captured_event_pk(statement: str, action: str, index: int = 1) -> uuid.UUID:
    """The pk the triggers give the ``index``-th ``action`` event of ``statement``."""
    digest = hashlib.md5(  # noqa: S324 (a name derived from a random id, not a secret)
        f"{statement}{triggers.EVENT_TAGS[action]}{index}".encode()
    ).hexdigest()
    return uuid.UUID(digest)


def _log_captured(verb: str, table: str, statement: str, rows: int, *, recorded: bool) -> None:
    """The same line :func:`auditlog.services.record_event` writes for an event, for a change
    the triggers recorded: with its event's pk when the statement changed one row (the pk is
    derived from the statement's id, no query needed), else with the number of rows; and, at
    ``trace``, the decision as the signal path traces it."""
    action = _ACTIONS[verb]
    if rows < 1:
        return
    if table in triggers.membership_tables():
        # Rows of a many-to-many table: their events are the members' (not one per row).
        if recorded:
            logger.info(
                "membership change recorded",
                extra={"table": table, "rows": rows, "statement": statement},
            )
        return
    if trace_logger.isEnabledFor(TRACE):
        decision = (
            f"recorded {action} (database triggers)"
            if recorded
            else "not recorded: capture is ignored (audit_ignore)"
            if settings.AUDIT_DB_CAPTURE
            else "left to the signals: AUDIT_DB_CAPTURE is off"
        )
        trace_logger.log(TRACE, "capture: %s", decision, extra={"table": table, "rows": rows})
    if not recorded:
        return
    if rows == 1:
        pk = captured_event_pk(statement, action)
        logger.info("event recorded", extra={"event_pk": str(pk), "action": action})
    else:
        logger.info("%d events recorded", rows, extra={"action": action, "statement": statement})


def _install_wrapper(connection: Any, **_: Any) -> None:
    if connection.vendor == "postgresql" and execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(execute_wrapper)


def connect() -> None:
    connection_created.connect(_install_wrapper, dispatch_uid="auditlog.dbcapture")
    for connection in connections.all(initialized_only=True):
        _install_wrapper(connection)


# --- The SQL helpers the triggers call ------------------------------------------------------------


def install_functions(using: str = "default", **_: Any) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(dbfunctions.functions_sql())


def _on_pre_migrate(**_: Any) -> None:
    global _migrating
    _migrating = True


def _on_post_migrate(using: str = "default", **_: Any) -> None:
    global _migrating
    _migrating = False
    install_functions(using)
