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

On SQLite, or with ``AUDIT_DB_CAPTURE=false``, the signals of :mod:`auditlog.capture` record
changes instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

from auditlog import triggers
from auditlog.context import capture_is_ignored, current_actor, current_origin, current_request
from auditlog.sanitize import (
    DESCRIBING_WORDS,
    EXEMPT_KEYS,
    MASK,
    SECRET_KEYS,
    SECRET_SUBSTRINGS,
    SECRET_WORDS,
)
from directory.models import ANONYMOUS_USERNAME, User

_DML = re.compile(r"\s*(?:INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_tables: re.Pattern[str] | None = None
_migrating = False  # no triggers are installed while migrate runs; nothing to hand over
CACHE_ATTR = "_auditlog_db_context"


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
        return '{"ignore": true}'
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
    text = context_json() if settings.AUDIT_DB_CAPTURE else '{"ignore": true}'
    literal = "'" + text.replace("'", "''") + "'"
    prefix = f"SELECT set_config('{triggers.SETTING}', {literal}, true); "
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
    return result


def _install_wrapper(connection: Any, **_: Any) -> None:
    if connection.vendor == "postgresql" and execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(execute_wrapper)


def connect() -> None:
    connection_created.connect(_install_wrapper, dispatch_uid="auditlog.dbcapture")
    for connection in connections.all(initialized_only=True):
        _install_wrapper(connection)


# --- The SQL helpers the triggers call ------------------------------------------------------------


def _words(items: Any) -> str:
    return ", ".join("'" + item.replace("'", "''") + "'" for item in sorted(items))


def functions_sql() -> str:
    """The helper functions, generated from the redaction policy's word lists."""
    default_retention = settings.EVENT_RETENTION
    if not isinstance(default_retention, timedelta):
        default_retention = timedelta(days=365)
    seconds = default_retention.total_seconds()
    substrings = "|".join(SECRET_SUBSTRINGS)
    words = "|".join(sorted(SECRET_WORDS))
    describing = "|".join(sorted(DESCRIBING_WORDS - {"key", "keys"}))
    mask = "'" + MASK + "'"
    # Generated from the policy's constants, never from input.
    return f"""
CREATE OR REPLACE FUNCTION auditlog_iso(value timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN extract(microseconds FROM value)::bigint % 1000000 <> 0
       THEN to_char(value AT TIME ZONE 'UTC', '.US') ELSE '' END || 'Z'
$$;

CREATE OR REPLACE FUNCTION auditlog_mask_text(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN value IS NULL OR length(value) < 8 THEN value
    WHEN (position('$' IN value) > 0 AND value ~
           '^(pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|sha1|md5|crypt)\\$')
      OR (left(value, 3) = 'eyJ'
          AND value ~ '^eyJ[A-Za-z0-9_-]{{5,}}\\.eyJ[A-Za-z0-9_-]{{5,}}\\.[A-Za-z0-9_-]*$')
      OR (position('PRIVATE KEY-----' IN value) > 0
          AND value ~ '-----BEGIN [A-Z ]*PRIVATE KEY-----')
      OR (value ~ '^(AKIA|ASIA|gh[pousr]_|xox[abprs])'
          AND value ~ ('^((AKIA|ASIA)[0-9A-Z]{{16}}|gh[pousr]_[A-Za-z0-9]{{30,}}'
                       || '|xox[abprs]-[A-Za-z0-9-]{{10,}})$'))
    THEN {mask}
    WHEN position(' ' IN value) = 0 AND position('://' IN value) = 0 THEN value
    ELSE regexp_replace(
      regexp_replace(value, '\\y(Bearer|Basic|Token|Digest)\\s+[A-Za-z0-9._~+/=-]{{6,}}',
                     '\\1 ' || {mask}, 'g'),
      '(\\y[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s:/@]*:)[^\\s@/]+(@)', '\\1' || {mask} || '\\2', 'g')
  END
$$;

CREATE OR REPLACE FUNCTION auditlog_secret_key(key text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT lower(key) NOT IN ({_words(EXEMPT_KEYS)})
     AND (lower(key) IN ({_words(SECRET_KEYS)})
          OR (regexp_replace(lower(key), '[^a-z0-9]', '', 'g') ~ '({substrings})'
              OR lower(key) ~ '(^|[^a-z])({words})([^a-z]|$)')
             AND NOT lower(key) ~ '[^a-z]({describing})$')
$$;

CREATE OR REPLACE FUNCTION auditlog_mask_json(value jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE result jsonb := '{{}}'::jsonb; k text; v jsonb;
BEGIN
  IF value IS NULL THEN RETURN NULL; END IF;
  IF jsonb_typeof(value) = 'object' THEN
    FOR k, v IN SELECT * FROM jsonb_each(value) LOOP
      IF auditlog_secret_key(k) AND jsonb_typeof(v) IN ('string', 'number', 'boolean') THEN
        result := result || jsonb_build_object(k, {mask});
      ELSIF auditlog_secret_key(k) AND jsonb_typeof(v) = 'array' THEN
        result := result || jsonb_build_object(k, (SELECT jsonb_agg(CASE WHEN
          jsonb_typeof(e) = 'null' THEN e ELSE to_jsonb({mask}::text) END ORDER BY i)
          FROM jsonb_array_elements(v) WITH ORDINALITY AS a(e, i)));
      ELSE
        result := result || jsonb_build_object(k, auditlog_mask_json(v));
      END IF;
    END LOOP;
    RETURN result;
  ELSIF jsonb_typeof(value) = 'array' THEN
    RETURN COALESCE((SELECT jsonb_agg(auditlog_mask_json(e) ORDER BY i)
                     FROM jsonb_array_elements(value) WITH ORDINALITY AS a(e, i)), '[]'::jsonb);
  ELSIF jsonb_typeof(value) = 'string' THEN
    RETURN to_jsonb(auditlog_mask_text(value #>> '{{}}'));
  END IF;
  RETURN value;
END $$;

CREATE OR REPLACE FUNCTION auditlog_capture_context() RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE raw text := current_setting('{triggers.SETTING}', true); brand jsonb; retention interval;
BEGIN
  IF raw IS NOT NULL AND raw <> '' THEN RETURN raw::jsonb; END IF;
  -- No application context: a change made past the application (psql, another program).
  SELECT jsonb_build_object('app', 'directory', 'model_name', 'brand',
         'pk', replace(b.brand_uuid::text, '-', ''), 'name', auditlog_mask_text(b.name))
    INTO brand FROM directory_brand b WHERE b."default" ORDER BY b.domain LIMIT 1;
  BEGIN
    SELECT regexp_replace(replace(lower(s.event_retention), ';', ' '),
                          '([a-z]+)\\s*=\\s*([0-9.]+)', '\\2 \\1', 'g')::interval
      INTO retention FROM auditlog_systemsettings s WHERE s.id = 1 AND s.event_retention <> '';
  EXCEPTION WHEN others THEN retention := NULL;
  END;
  RETURN jsonb_build_object(
    'user', jsonb_build_object('username', session_user::text, 'pk', NULL, 'email', ''),
    'client_ip', NULL, 'brand', COALESCE(brand, '{{}}'::jsonb),
    'context', jsonb_build_object('source', 'database', 'database_user', current_user::text),
    'expires_in', extract(epoch FROM COALESCE(retention, make_interval(secs => {seconds}))),
    'origin', 'database');
END $$;
"""  # noqa: S608


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
