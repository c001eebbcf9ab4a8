"""The one redaction policy: JSON-safe values, secrets masked, harmless keys left readable."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest

from auditlog.sanitize import MASK, get_user, is_secret_key, model_to_dict, sanitize
from directory.models import Brand, Group, User

SECRET_KEYS = [
    "password",
    "Password",
    "PASSWORD",
    "password1",
    "new_password2",
    "old_password",
    "passwd",
    "db_pass",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "otp_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "csrfmiddlewaretoken",
    "X-CSRFToken",
    "api_key",
    "apikey",
    "x-api-key",
    "X-Api-Key",
    "private_key",
    "SigningKey",
    "key",
    "ssh_keys",
    "signature",
    "HTTP_COOKIE",
    "cookie",
    "set-cookie",
    "sessionid",
    "session_key",
    "Authorization",
    "HTTP_AUTHORIZATION",
    "auth",
    "basic_auth",
    "credentials",
    "aws_credential",
    "pin",
    "jwt",
    "goauthentik.io/some-key",
    "webhook_url",
    "sentry_dsn",
]

HARMLESS_KEYS = [
    "username",
    "email",
    "auth_method",
    "auth_method_args",
    "authorized_application",
    "authenticated_as",
    "author",
    "passing",
    "password_change_date",
    "token_type",
    "keyboard",
    "monkey",
    "message",
    "http_request",
    "path",
    "geo",
    "action",
    "keywords",
    "created_at",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_looking_keys_are_masked(key: str) -> None:
    assert is_secret_key(key), key
    assert sanitize({key: "hunter2-value"}) == {key: MASK}


@pytest.mark.parametrize("key", HARMLESS_KEYS)
def test_harmless_keys_stay_readable(key: str) -> None:
    assert not is_secret_key(key), key
    assert sanitize({key: "visible"}) == {key: "visible"}


def test_the_corpus_is_large_enough_to_mean_something() -> None:
    assert len(SECRET_KEYS) >= 30
    assert len(HARMLESS_KEYS) >= 10


def test_the_mask_is_twenty_asterisks() -> None:
    assert MASK == "*" * 20


def test_nested_secrets_are_masked_and_their_siblings_kept() -> None:
    value = {"http_request": {"args": {"token": "abc", "next": "/"}, "method": "GET"}}
    assert sanitize(value) == {
        "http_request": {"args": {"token": MASK, "next": "/"}, "method": "GET"}
    }


def test_lists_and_sets_under_a_secret_key_are_masked_element_by_element() -> None:
    value = {"goauthentik.io/some-key": ["foo", "bar"], "api_keys": {"x", "y"}}
    assert sanitize(value) == {"goauthentik.io/some-key": [MASK, MASK], "api_keys": [MASK, MASK]}


def test_a_mapping_under_a_secret_key_has_every_leaf_masked() -> None:
    assert sanitize({"credentials": {"value": "s3cr3t", "n": 3}}) == {
        "credentials": {"value": MASK, "n": MASK}
    }


def test_a_model_reference_under_a_secret_key_stays_readable() -> None:
    reference = {"pk": "ab12", "app": "directory", "name": "elastic", "model_name": "token"}
    assert sanitize({"token": reference}) == {"token": reference}


def test_exempt_keys_are_readable_but_their_nested_secrets_are_not() -> None:
    value = {"auth_method_args": {"mfa_devices": ["totp"], "password": "x"}}
    assert sanitize(value) == {"auth_method_args": {"mfa_devices": ["totp"], "password": MASK}}


def test_none_under_a_secret_key_stays_none() -> None:
    assert sanitize({"password": None}) == {"password": None}


def test_sanitize_never_mutates_its_input() -> None:
    original = {"token": ["a", "b"], "nested": {"secret": {"x"}, "list": [1, {"password": "p"}]}}
    before = copy.deepcopy(original)
    result = sanitize(original)
    assert original == before
    assert result["nested"]["list"][1] == {"password": MASK}
    assert result["token"] is not original["token"]


def test_uuids_become_hex_without_dashes() -> None:
    value = uuid.UUID("1e399dbf-bb30-4d0f-acf3-a5275e065cd0")
    assert sanitize({"id": value}) == {"id": "1e399dbfbb304d0facf3a5275e065cd0"}


def test_aware_datetimes_become_iso_8601_with_z() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert sanitize(moment) == "2026-01-02T03:04:05.123456Z"


def test_other_time_zones_are_converted_to_utc() -> None:
    moment = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert sanitize(moment) == "2026-01-02T03:00:00Z"


def test_dates_timedeltas_decimals_paths_and_enums_become_json() -> None:
    class Colour(Enum):
        RED = "red"

    value = {
        "day": date(2026, 3, 1),
        "duration": timedelta(hours=1),
        "amount": Decimal("1.50"),
        "where": Path("/tmp/x"),
        "colour": Colour.RED,
        "kind": ValueError,
        "error": ValueError("boom"),
        "nan": float("nan"),
    }
    assert sanitize(value) == {
        "day": "2026-03-01",
        "duration": "3600.0",
        "amount": "1.50",
        "where": "/tmp/x",
        "colour": "red",
        "kind": {"type": "ValueError", "module": "builtins"},
        "error": "boom",
        "nan": "nan",
    }


def test_nul_characters_are_removed_from_values_and_keys() -> None:
    assert sanitize({"a\x00b": "foo bar \u0000 baz"}) == {"ab": "foo bar  baz"}


def test_falsy_list_items_are_kept() -> None:
    assert sanitize([0, False, "", None, 3]) == [0, False, "", None, 3]


def test_requests_are_dropped() -> None:
    from django.test import RequestFactory

    assert sanitize({"request": RequestFactory().get("/"), "n": 1}) == {"n": 1}


def test_deep_structures_are_cut_off_instead_of_overflowing() -> None:
    value: dict = {}
    node = value
    for _ in range(500):
        node["x"] = {}
        node = node["x"]
    result = sanitize(value)
    depth = 0
    while isinstance(result, dict) and "x" in result:
        result = result["x"]
        depth += 1
    assert depth < 40


@pytest.mark.parametrize(
    "secret",
    [
        "pbkdf2_sha256$870000$abcdefgh$c2VjcmV0aGFzaHZhbHVl",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2g",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ],
)
def test_credentials_are_masked_under_any_key(secret: str) -> None:
    assert sanitize({"note": secret}) == {"note": MASK}


def test_credentials_inside_text_are_masked_and_the_text_kept() -> None:
    value = {
        "header": "Bearer abcdef1234567890",
        "database": "postgres://app:s3cr3tpw@db.example.com/app",
        "link": "/reset/?token=abc123&next=/home",
    }
    assert sanitize(value) == {
        "header": f"Bearer {MASK}",
        "database": f"postgres://app:{MASK}@db.example.com/app",
        "link": f"/reset/?token={MASK}&next=/home",
    }


@pytest.mark.django_db
def test_models_become_references_with_hex_pks() -> None:
    group = Group.objects.create(name="Engineering")
    assert sanitize({"group": group}) == {
        "group": {
            "app": "directory",
            "model_name": "group",
            "pk": group.pk.hex,
            "name": "Engineering",
        }
    }
    brand = Brand.objects.create(domain="x.example.com", name="X")
    assert model_to_dict(brand)["pk"] == brand.pk.hex


@pytest.mark.django_db
def test_users_become_the_user_shape() -> None:
    user = User.objects.create_user("ana", "ana@example.com")
    assert sanitize({"who": user}) == {
        "who": {"username": "ana", "pk": user.pk, "email": "ana@example.com"}
    }


@pytest.mark.django_db
def test_the_anonymous_user_is_a_persisted_user_marked_anonymous() -> None:
    from django.contrib.auth.models import AnonymousUser

    shape = get_user(AnonymousUser())
    assert shape["username"] == "AnonymousUser"
    assert shape["is_anonymous"] is True
    assert shape["email"] == ""
    assert User.objects.filter(pk=shape["pk"]).exists()
    assert get_user(AnonymousUser())["pk"] == shape["pk"]
