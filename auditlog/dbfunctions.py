"""The SQL functions the capture triggers (:mod:`auditlog.triggers`) call: the redaction policy
of :mod:`auditlog.sanitize` ported to SQL, so that a trigger masks exactly what the Python
policy masks (``tests/auditlog/test_db_masking.py`` checks the two against each other), the
ISO 8601 times of the signal path, and the context of a change made past the application.
Generated from the policy's own word lists; installed by :mod:`auditlog.dbcapture` after every
``migrate``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

from auditlog import triggers
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
