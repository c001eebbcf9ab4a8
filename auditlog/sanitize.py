"""The one redaction policy.

Everything that enters an event (context, diffs, model state, query strings) and everything that
leaves one (API, pages, exports) goes through :func:`sanitize`, which does two things at once:

* makes the value JSON-safe: models become ``{app, model_name, pk, name}``, users become the
  ``{username, pk, email}`` shape of authentik's ``get_user``, UUIDs become hex, datetimes ISO
  8601 with ``Z``, NUL characters are removed;
* masks secrets: a scalar under a secret-looking key becomes ``MASK`` (20 asterisks, the
  reference's marker), and a list under one has each item masked. A mapping under one is
  recursed into, as the reference does: only the secret-looking keys inside are masked
  (``credentials: {password, login}`` keeps ``login``), except the keys that carry the
  secret's own value (a diff's ``previous_value``/``new_value``, a ``value``), and inside a
  session everything but what describes it (there the id is the secret). String
  values that are recognisably credentials (password hashes, JWTs, bearer headers, private
  keys, passwords inside URLs) are masked wherever they appear, and so are secret-named
  parameters inside query strings, cookie headers and free text.

Secret keys are the usual credential words (password, token, key, secret, authorization,
cookie...), session cookies and session ids (Django's ``sessionid``, ``connect.sid``,
``PHPSESSID``, ``JSESSIONID``, ``ASP.NET_SessionId``, ``laravel_session``, ``_session_id``,
a bare ``session`` or ``sid``...), one-time codes (``otp``, ``totp``, ``mfa_code``,
``verification_code``...), recovery or backup codes, and links that log in or reset by
themselves (``reset_link``, ``magic_link``). It never mutates its input.
Over-masking is a bug too: a key whose last word names metadata about a secret
(``session_expiry``, ``otp_enabled``, ``password_change_date``) or an identifier of one
(``token_uuid``, ``token_identifier``, ``api_key_id``) stays readable, and the keys that merely
look secret (``auth_method``, ``authorized_application``, ``passing``, ``author``...) are
listed explicitly.

Longer than 500 lines on purpose: the word lists that decide what is secret are most of it,
and the policy is kept in one module so that every path in and out applies the same one.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import PurePath
from typing import Any

import geoip2.models
from django.contrib.auth.models import AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest
from django.utils.functional import Promise

from auditlog.enrich import asn_to_dict, city_to_dict
from directory.models import ANONYMOUS_USERNAME, User

MASK = "********************"
# Deeper structures than this are cut off; no legitimate audit context nests this far.
MAX_DEPTH = 32

# A key is secret when its letters (separators removed) contain one of these...
SECRET_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "signature",
    "cookie",
    "credential",
    "authorization",
    "sessionid",  # Django's sessionid, JSESSIONID, ASP.NET_SessionId, ASPSESSIONIDxxxxxxxx
    "sessid",  # PHPSESSID
    "csrf",
)
# ...or when one of its words (split on separators and camelCase) is one of these.
SECRET_WORDS = frozenset({"key", "keys", "pass", "pwd", "auth", "pin", "jwt", "bearer", "dsn"})
# Exact keys that are secret although no rule above catches them.
SECRET_KEYS = frozenset({"webhook_url", "connection_string"})
# Keys that look secret but are not: they stay readable (their nested values are still checked).
EXEMPT_KEYS = frozenset(
    {
        "auth_method",
        "auth_method_args",
        "authorized_application",
        "authenticated_as",
        "authentication_flow",
        "authorization_flow",
        "author",
        "authors",
        "passing",
        "password_change_date",
        "password_set",
        "token_type",
        "expires_in",
        "keyword",
        "keywords",
        "objectsid",  # a directory's security identifier, not a session id
    }
)
# A final word that names metadata about a secret rather than the secret itself.
METADATA_WORDS = frozenset(
    {
        "date",
        "at",
        "time",
        "method",
        "methods",
        "type",
        "types",
        "flow",
        "expiry",
        "expires",
        "expiring",
        "length",
        "count",
        "policy",
        "changed",
        "set",
        "created",
        "updated",
        "revoked",
        "started",
        "ended",
        "duration",
        "timeout",
        "age",
        "lifetime",
        "ttl",
        "enabled",
        "disabled",
        "required",
        "verified",
        "configured",
        "remaining",
        "used",
        "attempts",
        "state",
        "status",
    }
)
# A final word that names an identifier of a secret (token_uuid, api_key_id): readable, except
# for a session, whose id is the secret.
IDENTIFIER_WORDS = frozenset(
    {"id", "ids", "uuid", "uuids", "pk", "pks", "identifier", "identifiers", "name", "names"}
)
# Session cookies and ids: a final word such as laravel_session, connect.sid, express:sess...
SESSION_WORDS = frozenset({"session", "sessions", "sess", "sid", "sids"})
# ...or session followed by one of these (session_id, beaker.session.id, session_data).
SESSION_PARTS = frozenset(
    {"id", "ids", "uuid", "identifier", "key", "keys", "token", "value", "data", "hash", "string"}
)
# One-time passwords, as the final word (otp, sms_otp; otp_enabled and otp_device are not).
OTP_WORDS = frozenset({"otp", "otps", "totp", "hotp"})
# A code or codes is secret when the word before it says it is one (verification_code,
# recovery_codes, mfa_code); country_code, status_code and a bare code stay readable.
CODE_QUALIFIERS = frozenset(
    {
        "otp",
        "totp",
        "hotp",
        "mfa",
        "verification",
        "verify",
        "recovery",
        "backup",
        "scratch",
        "security",
        "confirmation",
        "confirm",
        "sms",
        "login",
        "signin",
        "reset",
        "activation",
        "device",
        "access",
        "magic",
        "email",
    }
)
CODE_STEMS = ("2fa", "twofa", "twofactor", "twostep", "onetime")
# A link or URL that logs in or resets by itself (reset_link, magic_link, recovery_url) carries
# its token in the path as often as in the query string: the whole value is masked.
LINK_WORDS = frozenset({"link", "links", "url", "urls", "uri"})
LINK_QUALIFIERS = frozenset(
    {
        "reset",
        "magic",
        "recovery",
        "activation",
        "invite",
        "invitation",
        "verification",
        "verify",
        "confirm",
        "confirmation",
        "login",
        "signin",
        "enrollment",
    }
)
# Session cookies named with a prefix and a per-site suffix (wordpress_logged_in_<hash>,
# Laravel's remember_web_<hash>, Shibboleth's _shibsession_<hash>), by their compact form.
SESSION_COOKIE_PREFIXES = ("wordpressloggedin", "wordpresssec", "rememberweb", "shibsession")
# Inside a mapping (or a list of mappings) under a secret key, a key whose last word (or whole
# name) is one of these describes the secret and stays readable, checked by the ordinary rules;
# every other value there is taken to be the secret or part of it (a diff's new_value, a
# cookie's value, the entries of a map of named secrets) and stays masked.
DESCRIBING_WORDS = (
    IDENTIFIER_WORDS
    | METADATA_WORDS
    | {
        "login",
        "username",
        "user",
        "email",
        "kind",
        "path",
        "domain",
        "host",
        "scope",
        "scopes",
        "issuer",
        "audience",
        "intent",
        "description",
        "label",
        "provider",
        "algorithm",
        "alg",
        "source",
        "app",
        "model",
        "stage",
        "ip",
        "agent",
        "format",
        "version",
        "current",
        "managed",
        "expires",
        "secure",
        "httponly",
        "samesite",
        "add",  # an m2m diff: {"add": [pk, ...]}
        "remove",
        "clear",
    }
)
# Under a session key, its id (like its key) is the secret itself.
SESSION_DESCRIBING_WORDS = DESCRIBING_WORDS - {
    "id",
    "ids",
    "uuid",
    "uuids",
    "pk",
    "pks",
    "identifier",
    "identifiers",
}
# Inside a mapping under a secret key, the keys whose value is the secret itself.
VALUE_KEYS = frozenset(
    {
        "value",
        "values",
        "previous_value",
        "new_value",
        "old_value",
        "raw",
        "hash",
        "data",
        "plaintext",
    }
)
# What _secret_kind gives: None for a readable key, else the words that describe it (above).
SecretKind = frozenset[str] | None

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
# Values that are credentials whatever key they sit under. Each pattern has a cheap substring
# test in front of it (see _is_credential): most strings never reach a regular expression.
_PASSWORD_HASH = re.compile(
    r"^(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|sha1|md5|crypt)\$"
)
_JWT = re.compile(r"^eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*$")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_CLOUD_KEY = re.compile(
    r"^(?:(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})$"
)
_CLOUD_PREFIXES = (
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xoxa",
    "xoxb",
    "xoxp",
    "xoxr",
    "xoxs",
)
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=-]{6,}")
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(@)")
# name=value in a query string (?a=1&b=2), a cookie header (a=1; b=2) or free text. A value
# ends at the next separator; a ";" ends it only when another name= follows.
_QUERY_PARAM = re.compile(r"(^|[?&;\s]\s*)([^=&#?;\s]+)=((?:[^&#;\s]|;(?!\s*[^=&#?;\s]+=))*)")
_DRUPAL_SESSION = re.compile(r"^s?sess[0-9a-f]{32}$")


class _Drop:
    """Marks a value that is left out entirely (an HttpRequest, say)."""


DROP = _Drop()


def is_secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` must be masked."""
    return _secret_kind(key) is not None


def secret_kind_number(key: str) -> int | None:
    """The kind of ``key`` as the database-side port of this policy numbers it
    (:mod:`auditlog.dbfunctions`): ``None`` readable, 1 a secret, 2 a session (inside which the
    id is the secret too)."""
    kind = _secret_kind(key)
    if kind is None:
        return None
    return 2 if kind is SESSION_DESCRIBING_WORDS else 1


@lru_cache(maxsize=8192)
def _secret_kind(key: str) -> SecretKind:
    """``None`` for a readable key; for a secret one, the words that describe it inside a
    mapping stored under it (``DESCRIBING_WORDS``, or ``SESSION_DESCRIBING_WORDS``)."""
    lowered = key.lower()
    if lowered in EXEMPT_KEYS:
        return None
    if lowered in SECRET_KEYS:
        return DESCRIBING_WORDS
    words = [word.lower() for word in _WORD.findall(key)]
    last = words[-1] if words else ""
    several = len(words) > 1
    if several and last in METADATA_WORDS:
        return None
    if last in SESSION_WORDS or (
        several and words[-2] in ("session", "sess") and last in SESSION_PARTS
    ):
        return SESSION_DESCRIBING_WORDS
    compact = _NON_ALNUM.sub("", lowered)
    if (
        "sessionid" in compact
        or "sessid" in compact
        or compact.startswith(SESSION_COOKIE_PREFIXES)
        or _DRUPAL_SESSION.match(compact)
    ):
        return SESSION_DESCRIBING_WORDS
    if several and last in IDENTIFIER_WORDS:
        return None
    if last in OTP_WORDS:
        return DESCRIBING_WORDS
    if (
        several
        and last in ("code", "codes")
        and (words[-2] in CODE_QUALIFIERS or "".join(words[:-1]).endswith(CODE_STEMS))
    ):
        return DESCRIBING_WORDS
    if several and last in LINK_WORDS and words[-2] in LINK_QUALIFIERS:
        return DESCRIBING_WORDS
    if any(part in compact for part in SECRET_SUBSTRINGS):
        return DESCRIBING_WORDS
    if any(word in SECRET_WORDS for word in words):
        return DESCRIBING_WORDS
    return None


@lru_cache(maxsize=8192)
def _inner_kind(key: str, parent: frozenset[str]) -> SecretKind:
    """The kind of ``key`` inside a mapping under a secret key of kind ``parent``.

    As the reference does (spec section 1.7), a mapping under a secret key is recursed and
    only the secret-looking keys inside are masked (``credentials: {password, login}`` keeps
    ``login``), with two exceptions: the keys that carry the secret's own value (a diff's
    ``previous_value``/``new_value``, a ``value``) take the parent's kind, and inside a
    session everything but what describes it is masked, since there the id is the secret."""
    own = _secret_kind(key)
    if own is not None:
        return own
    lowered = key.lower()
    if lowered in EXEMPT_KEYS:
        return None
    if parent is not SESSION_DESCRIBING_WORDS:
        return parent if lowered in VALUE_KEYS else None
    words = _WORD.findall(key)
    if (words and words[-1].lower() in parent) or _NON_ALNUM.sub("", lowered) in parent:
        return None
    return parent


def mask_string(value: str) -> str:
    """Remove NUL characters and mask credentials embedded in a free-text value."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if len(value) < 8:
        return value
    if _is_credential(value):
        return MASK
    if " " in value and (
        "Bearer" in value or "Basic" in value or "Token" in value or "Digest" in value
    ):
        value = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {MASK}", value)
    if "://" in value and "@" in value:
        value = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(2)}", value)
    if "=" in value:
        value = _QUERY_PARAM.sub(_mask_query_param, value)
    return value


def _is_credential(value: str) -> bool:
    if "$" in value and _PASSWORD_HASH.match(value):
        return True
    if value.startswith("eyJ") and _JWT.match(value):
        return True
    if "PRIVATE KEY-----" in value and _PRIVATE_KEY.search(value):
        return True
    return value.startswith(_CLOUD_PREFIXES) and bool(_CLOUD_KEY.match(value))


def _mask_query_param(match: re.Match[str]) -> str:
    if is_secret_key(match.group(2)):
        return f"{match.group(1)}{match.group(2)}={MASK}"
    return match.group(0)


def model_to_dict(instance: models.Model) -> dict[str, Any]:
    """A reference to a model instance: ``{app, model_name, pk, name}``."""
    name = getattr(instance, "name", None)
    if not isinstance(name, str) or not name:
        name = str(instance)
    return {
        "app": instance._meta.app_label,
        "model_name": instance._meta.model_name,
        "pk": _plain(instance.pk),
        "name": mask_string(name),
    }


def get_user(user: Any) -> dict[str, Any]:
    """The ``user`` JSON of an event: ``{username, pk, email}`` (+ ``is_anonymous``)."""
    if user is None:
        return {}
    if getattr(user, "is_anonymous", False) and not isinstance(user, User):
        user = User.objects.anonymous()
    data: dict[str, Any] = {
        "username": mask_string(user.get_username()),
        "pk": user.pk,
        "email": mask_string(getattr(user, "email", "") or ""),
    }
    if user.get_username() == ANONYMOUS_USERNAME:
        data["is_anonymous"] = True
    return data


def sanitize(value: Any) -> Any:
    """Return a JSON-safe copy of ``value`` with every secret masked."""
    result = _sanitize(value, kind=None, depth=0)
    return None if result is DROP else result


def redact_event(
    *, user: Mapping[str, Any], context: Mapping[str, Any], brand: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The redaction policy for one event's JSON: its ``user``, ``context`` and ``brand``
    (``None``: none given) as JSON-safe copies with every secret masked. The recording service
    applies it exactly once to every event it writes."""
    return (
        sanitize(user) or {},
        sanitize(context) or {},
        None if brand is None else sanitize(brand) or {},
    )


def mask_field_value(field_name: str, value: Any) -> Any:
    """Sanitise one model field value, masking it when the field's name is secret."""
    return _sanitize(value, kind=_secret_kind(field_name), depth=1)


def _sanitize(value: Any, *, kind: SecretKind, depth: int) -> Any:
    # ``kind`` is None for a readable value; for a secret one, what _secret_kind gave its key.
    if depth > MAX_DEPTH:
        return "…"
    secret = kind is not None
    # Fast paths for the plain JSON types (exact types: subclasses such as enums and lazy
    # strings take the careful path below).
    value_type = type(value)
    if value_type is str:
        return MASK if secret else mask_string(value)
    if value_type is dict:
        return _sanitize_mapping(value, kind=kind, depth=depth)
    if value_type is int or value_type is bool:
        return MASK if secret else value
    if value is None:
        return None  # nothing to hide, and "absent" must stay distinguishable from "set"
    if isinstance(value, bool | int) and not isinstance(value, enum.Enum):
        return MASK if secret else value
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        return MASK if secret else mask_string(value)
    if isinstance(value, Mapping):
        return _sanitize_mapping(value, kind=kind, depth=depth)
    if isinstance(value, list | tuple | set | frozenset | types.GeneratorType):
        items = value
        if isinstance(value, set | frozenset):
            items = _sorted_if_possible(value)
        result = []
        for item in items:
            cleaned = _sanitize(item, kind=kind, depth=depth + 1)
            if cleaned is not DROP:
                result.append(cleaned)
        return result
    converted = _convert(value)
    if converted is DROP:
        return DROP
    if isinstance(converted, Mapping | list):
        return _sanitize(converted, kind=kind, depth=depth + 1)
    if secret:
        return MASK
    if isinstance(converted, str):
        return mask_string(converted)
    return converted


def _sanitize_mapping(value: Mapping[Any, Any], *, kind: SecretKind, depth: int) -> dict[str, Any]:
    # Under a secret key (kind set), a mapping is recursed into: the keys that describe the
    # secret (login, expiry, token_uuid, a model reference) stay readable and follow the
    # ordinary rules; the rest (a diff's new_value, a cookie's value, a session's id) is masked.
    child_depth = depth + 1
    result: dict[str, Any] = {}
    for raw_key, item in value.items():
        key = raw_key if type(raw_key) is str else str(raw_key)
        if "\x00" in key:
            key = key.replace("\x00", "")
        child = _secret_kind(key) if kind is None else _inner_kind(key, kind)
        # The common leaves inline (a function call per leaf is most of the cost).
        item_type = type(item)
        if item_type is str:
            result[key] = (
                MASK
                if child is not None
                else (item if len(item) < 8 and "\x00" not in item else mask_string(item))
            )
        elif item_type is int or item_type is bool or (item_type is float and math.isfinite(item)):
            result[key] = MASK if child is not None else item
        elif item is None:
            result[key] = None
        else:
            cleaned = _sanitize(item, kind=child, depth=child_depth)
            if cleaned is not DROP:
                result[key] = cleaned
    return result


def _sorted_if_possible(values: Iterable[Any]) -> list[Any]:
    items = list(values)
    try:
        return sorted(items)
    except TypeError:
        return items


def _plain(value: Any) -> Any:
    """A primary key as JSON: UUIDs as hex, the rest sanitised."""
    if isinstance(value, uuid.UUID):
        return value.hex
    return sanitize(value)


def _convert(value: Any) -> Any:
    """Turn one non-container value into something JSON can hold."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value.total_seconds())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return _convert_plain(value.value)
    if isinstance(value, HttpRequest):
        return DROP
    if isinstance(value, User | AnonymousUser):
        return get_user(value)
    if isinstance(value, models.Model):
        return model_to_dict(value)
    if isinstance(value, models.QuerySet):
        return [model_to_dict(item) for item in value[:1000]]
    if isinstance(value, type):
        return {"type": value.__name__, "module": value.__module__}
    if isinstance(value, BaseException):
        return str(value)
    if dataclasses.is_dataclass(value):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, PurePath | Promise):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Decimal):
        return str(value)
    geo = _geoip_record(value)
    if geo is not None:
        return geo
    try:
        return DjangoJSONEncoder().default(value)
    except TypeError:
        return str(value)


def _convert_plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return _convert(value)


def _geoip_record(value: Any) -> dict[str, Any] | None:
    if isinstance(value, geoip2.models.City):
        return dict(city_to_dict(value))
    if isinstance(value, geoip2.models.ASN):
        return dict(asn_to_dict(value))
    return None
