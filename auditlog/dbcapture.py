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
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

from auditlog import triggers
from auditlog.context import capture_is_ignored, current_actor, current_origin, current_request
from auditlog.sanitize import (
    CODE_QUALIFIERS,
    CODE_STEMS,
    EXEMPT_KEYS,
    IDENTIFIER_WORDS,
    LINK_QUALIFIERS,
    LINK_WORDS,
    MASK,
    METADATA_WORDS,
    OTP_WORDS,
    SECRET_KEYS,
    SECRET_SUBSTRINGS,
    SECRET_WORDS,
    SESSION_COOKIE_PREFIXES,
    SESSION_DESCRIBING_WORDS,
    SESSION_PARTS,
    SESSION_WORDS,
    VALUE_KEYS,
)
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


def _audited_statement(sql: str) -> bool:
    global _tables
    if not _DML.match(sql):
        return False
    if _tables is None:
        names = sorted(triggers.audited_tables(), key=len, reverse=True)
        _tables = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
    return bool(_tables.search(sql))


def _errored(connection: Any) -> bool:
    import psycopg

    raw = connection.connection
    return raw is not None and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def execute_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    connection = context["connection"]
    if (
        _migrating
        or not isinstance(sql, str)
        or not _audited_statement(sql)
        or connection.vendor != "postgresql"
        or _errored(connection)
    ):
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
    _log_captured(sql, statement, context["cursor"].cursor.rowcount, recorded=recorded)
    return result


_ACTIONS = {"insert": "model_created", "update": "model_updated", "delete": "model_deleted"}


def captured_event_pk(statement: str, action: str, index: int = 1) -> uuid.UUID:
    """The pk the triggers give the ``index``-th ``action`` event of ``statement``."""
    digest = hashlib.md5(  # noqa: S324 (a name derived from a random id, not a secret)
        f"{statement}{triggers.EVENT_TAGS[action]}{index}".encode()
    ).hexdigest()
    return uuid.UUID(digest)


def _log_captured(sql: str, statement: str, rows: int, *, recorded: bool) -> None:
    """The same line :func:`auditlog.services.record_event` writes for an event, for a change
    the triggers recorded: with its event's pk when the statement changed one row (the pk is
    derived from the statement's id, no query needed), else with the number of rows; and, at
    ``trace``, the decision as the signal path traces it."""
    verb = _DML.match(sql)
    action = _ACTIONS.get(verb.group(1).lower()) if verb else None
    if action is None or rows < 1:
        return
    tables = _tables.findall(sql) if _tables is not None else []
    if tables and tables[0] in triggers.membership_tables():
        # Rows of a many-to-many table: their events are the members' (not one per row).
        if recorded:
            logger.info(
                "membership change recorded",
                extra={"table": tables[0], "rows": rows, "statement": statement},
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
        trace_logger.log(TRACE, "capture: %s", decision, extra={"table": tables[:1], "rows": rows})
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


def _array(items: Any) -> str:
    """A SQL ``text[]`` literal of the policy's words (constants, never input)."""
    quoted = ("'" + item.replace("'", "''") + "'" for item in sorted(items))
    return "ARRAY[" + ", ".join(quoted) + "]::text[]"


def _alternatives(items: Any) -> str:
    return "|".join(sorted(items))


# The redaction policy of auditlog/sanitize.py, ported to SQL so that the triggers mask exactly
# what the Python policy masks; tests/auditlog/test_db_masking.py checks the two against each
# other on a corpus of keys and values. Placeholders (__NAME__) are filled from the policy's own
# word lists; kinds: NULL readable, 1 a secret (DESCRIBING_WORDS), 2 a session (its id is the
# secret too: SESSION_DESCRIBING_WORDS).
_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION auditlog_iso(value timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN extract(microseconds FROM value)::bigint % 1000000 <> 0
       THEN to_char(value AT TIME ZONE 'UTC', '.US') ELSE '' END || 'Z'
$$;

-- sanitize._WORD.findall(key), lower-cased. PostgreSQL's regular expressions take the longest
-- of the alternatives where Python's take the first, so the camelCase boundaries Python's
-- lookahead finds (HTTPCookie: HTTP, Cookie) are marked with a space first.
CREATE OR REPLACE FUNCTION auditlog_key_words(key text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(array_agg(lower(m[1]) ORDER BY i), '{}'::text[])
  FROM regexp_matches(regexp_replace(key, '([A-Z]+)([A-Z][a-z])', '\1 \2', 'g'),
                      '([A-Z]?[a-z]+|[A-Z]+|[0-9]+)', 'g') WITH ORDINALITY AS w(m, i)
$$;

-- sanitize._secret_kind
CREATE OR REPLACE FUNCTION auditlog_secret_kind(key text) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  lowered text := lower(key);
  words text[];
  n int;
  last text;
  before text;
  several boolean;
  compact text;
BEGIN
  IF key IS NULL OR lowered = ANY(__EXEMPT__) THEN RETURN NULL; END IF;
  IF lowered = ANY(__SECRET_KEYS__) THEN RETURN 1; END IF;
  words := auditlog_key_words(key);
  n := cardinality(words);
  last := COALESCE(words[n], '');
  before := COALESCE(words[n - 1], '');
  several := n > 1;
  IF several AND last = ANY(__METADATA__) THEN RETURN NULL; END IF;
  IF last = ANY(__SESSION_WORDS__)
     OR (several AND before IN ('session', 'sess') AND last = ANY(__SESSION_PARTS__)) THEN
    RETURN 2;
  END IF;
  compact := regexp_replace(lowered, '[^a-z0-9]', '', 'g');
  IF strpos(compact, 'sessionid') > 0 OR strpos(compact, 'sessid') > 0
     OR compact ~ '^(__COOKIE_PREFIXES__)' OR compact ~ '^s?sess[0-9a-f]{32}$' THEN
    RETURN 2;
  END IF;
  IF several AND last = ANY(__IDENTIFIER__) THEN RETURN NULL; END IF;
  IF last = ANY(__OTP__) THEN RETURN 1; END IF;
  IF several AND last IN ('code', 'codes')
     AND (before = ANY(__CODE_QUALIFIERS__)
          OR array_to_string(words[1:n - 1], '') ~ '(__CODE_STEMS__)$') THEN
    RETURN 1;
  END IF;
  IF several AND last = ANY(__LINK_WORDS__) AND before = ANY(__LINK_QUALIFIERS__) THEN
    RETURN 1;
  END IF;
  IF compact ~ '(__SUBSTRINGS__)' OR words && __SECRET_WORDS__ THEN RETURN 1; END IF;
  RETURN NULL;
END $$;

-- sanitize._inner_kind: a key inside a mapping stored under a secret key of kind parent.
CREATE OR REPLACE FUNCTION auditlog_inner_kind(key text, parent smallint) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  own smallint := auditlog_secret_kind(key);
  lowered text := lower(key);
  words text[];
BEGIN
  IF own IS NOT NULL THEN RETURN own; END IF;
  IF lowered = ANY(__EXEMPT__) THEN RETURN NULL; END IF;
  IF parent <> 2 THEN
    RETURN CASE WHEN lowered = ANY(__VALUE_KEYS__) THEN parent END;
  END IF;
  words := auditlog_key_words(key);
  IF COALESCE(words[cardinality(words)], '') = ANY(__SESSION_DESCRIBING__)
     OR regexp_replace(lowered, '[^a-z0-9]', '', 'g') = ANY(__SESSION_DESCRIBING__) THEN
    RETURN NULL;
  END IF;
  RETURN parent;
END $$;

-- sanitize.mask_string: credentials in free text.
CREATE OR REPLACE FUNCTION auditlog_mask_text(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  pattern text := '(^|[?&;\s]\s*)([^=&#?;\s]+)=((?:[^&#;\s]|;(?!\s*[^=&#?;\s]+=))*)';
  rest text;
  result text := '';
  m text[];
  pos int;
BEGIN
  IF value IS NULL OR length(value) < 8 THEN RETURN value; END IF;
  IF (strpos(value, '$') > 0 AND value ~
        '^(pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|sha1|md5|crypt)\$')
     OR (left(value, 3) = 'eyJ'
         AND value ~ '^eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*$')
     OR (strpos(value, 'PRIVATE KEY-----') > 0 AND value ~ '-----BEGIN [A-Z ]*PRIVATE KEY-----')
     OR (value ~ '^(AKIA|ASIA|gh[pousr]_|xox[abprs])'
         AND value ~ ('^((AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}'
                      || '|xox[abprs]-[A-Za-z0-9-]{10,})$')) THEN
    RETURN __MASK__;
  END IF;
  IF strpos(value, ' ') > 0 AND (strpos(value, 'Bearer') > 0 OR strpos(value, 'Basic') > 0
                                 OR strpos(value, 'Token') > 0 OR strpos(value, 'Digest') > 0) THEN
    value := regexp_replace(value, '\y(Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=-]{6,}',
                            '\1 ' || __MASK__, 'g');
  END IF;
  IF strpos(value, '://') > 0 AND strpos(value, '@') > 0 THEN
    value := regexp_replace(value, '(\y[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(@)',
                            '\1' || __MASK__ || '\2', 'g');
  END IF;
  IF strpos(value, '=') = 0 THEN RETURN value; END IF;
  -- name=value pairs (query strings, cookie headers, free text): a secret name's value masked.
  rest := value;
  LOOP
    m := regexp_match(rest, pattern);
    EXIT WHEN m IS NULL;
    pos := regexp_instr(rest, pattern);
    result := result || left(rest, pos - 1) || m[1] || m[2] || '='
      || CASE WHEN auditlog_secret_kind(m[2]) IS NULL THEN COALESCE(m[3], '') ELSE __MASK__ END;
    rest := substr(rest, pos + length(m[1]) + length(m[2]) + 1 + length(COALESCE(m[3], '')));
  END LOOP;
  RETURN result || rest;
END $$;

DROP FUNCTION IF EXISTS auditlog_mask_json(jsonb);  -- the one-argument form of earlier versions

-- sanitize._sanitize over JSON: kind as above, depth as Python counts it (a value deeper than
-- 32 levels is cut to an ellipsis; a mapping's scalar members are never cut).
CREATE OR REPLACE FUNCTION auditlog_mask_json(value jsonb, kind smallint DEFAULT NULL,
                                              depth int DEFAULT 1) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  result jsonb;
  k text;
  v jsonb;
  child smallint;
  t text := jsonb_typeof(value);
BEGIN
  IF value IS NULL THEN RETURN NULL; END IF;
  IF depth > 32 THEN RETURN to_jsonb('…'::text); END IF;
  IF t = 'object' THEN
    result := '{}'::jsonb;
    FOR k, v IN SELECT * FROM jsonb_each(value) LOOP
      child := CASE WHEN kind IS NULL THEN auditlog_secret_kind(k)
                    ELSE auditlog_inner_kind(k, kind) END;
      IF jsonb_typeof(v) IN ('object', 'array') THEN
        result := result || jsonb_build_object(k, auditlog_mask_json(v, child, depth + 1));
      ELSIF jsonb_typeof(v) = 'null' THEN
        result := result || jsonb_build_object(k, v);
      ELSIF child IS NOT NULL THEN
        result := result || jsonb_build_object(k, __MASK__);
      ELSIF jsonb_typeof(v) = 'string' THEN
        result := result || jsonb_build_object(k, auditlog_mask_text(v #>> '{}'));
      ELSE
        result := result || jsonb_build_object(k, v);
      END IF;
    END LOOP;
    RETURN result;
  ELSIF t = 'array' THEN
    RETURN COALESCE((SELECT jsonb_agg(auditlog_mask_json(e, kind, depth + 1) ORDER BY i)
                     FROM jsonb_array_elements(value) WITH ORDINALITY AS a(e, i)), '[]'::jsonb);
  ELSIF t = 'null' THEN
    RETURN value;
  ELSIF kind IS NOT NULL THEN
    RETURN to_jsonb(__MASK__);
  ELSIF t = 'string' THEN
    RETURN to_jsonb(auditlog_mask_text(value #>> '{}'));
  END IF;
  RETURN value;
END $$;

DROP FUNCTION IF EXISTS auditlog_secret_key(text);

CREATE OR REPLACE FUNCTION auditlog_capture_context() RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE raw text := current_setting('__SETTING__', true); brand jsonb; retention interval;
BEGIN
  IF raw IS NOT NULL AND raw <> '' THEN RETURN raw::jsonb; END IF;
  -- No application context: a change made past the application (psql, another program).
  SELECT jsonb_build_object('app', 'directory', 'model_name', 'brand',
         'pk', replace(b.brand_uuid::text, '-', ''), 'name', auditlog_mask_text(b.name))
    INTO brand FROM directory_brand b WHERE b."default" ORDER BY b.domain LIMIT 1;
  BEGIN
    SELECT regexp_replace(replace(lower(s.event_retention), ';', ' '),
                          '([a-z]+)\s*=\s*([0-9.]+)', '\2 \1', 'g')::interval
      INTO retention FROM auditlog_systemsettings s WHERE s.id = 1 AND s.event_retention <> '';
  EXCEPTION WHEN others THEN retention := NULL;
  END;
  RETURN jsonb_build_object(
    'user', jsonb_build_object('username', session_user::text, 'pk', NULL, 'email', ''),
    'client_ip', NULL, 'brand', COALESCE(brand, '{}'::jsonb),
    'context', jsonb_build_object('source', 'database', 'database_user', current_user::text),
    'expires_in', extract(epoch FROM COALESCE(retention, make_interval(secs => __SECONDS__))),
    'origin', 'database');
END $$;
"""


def functions_sql() -> str:
    """The helper functions, generated from the redaction policy's word lists."""
    default_retention = settings.EVENT_RETENTION
    if not isinstance(default_retention, timedelta):
        default_retention = timedelta(days=365)
    values = {
        "__EXEMPT__": _array(EXEMPT_KEYS),
        "__SECRET_KEYS__": _array(SECRET_KEYS),
        "__METADATA__": _array(METADATA_WORDS),
        "__SESSION_WORDS__": _array(SESSION_WORDS),
        "__SESSION_PARTS__": _array(SESSION_PARTS),
        "__COOKIE_PREFIXES__": _alternatives(SESSION_COOKIE_PREFIXES),
        "__IDENTIFIER__": _array(IDENTIFIER_WORDS),
        "__OTP__": _array(OTP_WORDS),
        "__CODE_QUALIFIERS__": _array(CODE_QUALIFIERS),
        "__CODE_STEMS__": _alternatives(CODE_STEMS),
        "__LINK_WORDS__": _array(LINK_WORDS),
        "__LINK_QUALIFIERS__": _array(LINK_QUALIFIERS),
        "__SUBSTRINGS__": _alternatives(SECRET_SUBSTRINGS),
        "__SECRET_WORDS__": _array(SECRET_WORDS),
        "__VALUE_KEYS__": _array(VALUE_KEYS),
        "__SESSION_DESCRIBING__": _array(SESSION_DESCRIBING_WORDS),
        "__MASK__": "'" + MASK + "'::text",
        "__SETTING__": triggers.SETTING,
        "__SECONDS__": repr(default_retention.total_seconds()),
    }
    sql = _FUNCTIONS
    for name, value in values.items():
        sql = sql.replace(name, value)
    return sql


def install_functions(using: str = "default", **_: Any) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(functions_sql())


def _on_pre_migrate(**_: Any) -> None:
    global _migrating
    _migrating = True


def _on_post_migrate(using: str = "default", **_: Any) -> None:
    global _migrating
    _migrating = False
    install_functions(using)
