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
    # Session cookies and session ids of common frameworks.
    "session",
    "Session",
    "sessions",
    "session_id",
    "sessionId",
    "session_identifier",
    "session_data",
    "_session_id",
    "JSESSIONID",
    "ASP.NET_SessionId",
    "ASPSESSIONIDQQGGGNCG",
    "PHPSESSID",
    "connect.sid",
    "sails.sid",
    "sid",
    "laravel_session",
    "ci_session",
    "rack.session",
    "_gitlab_session",
    "beaker.session.id",
    "express:sess",
    "koa.sess",
    "SESS0123456789abcdef0123456789abcdef",
    "SSESS0123456789abcdef0123456789abcdef",
    "wordpress_logged_in_0123456789abcdef",
    "remember_web_59ba36addc2b2f9401580f014c7f58ea4e30989d",
    "_shibsession_64656661756c74",
    # One-time codes.
    "otp",
    "OTP",
    "totp",
    "hotp",
    "sms_otp",
    "email_otp",
    "otp_code",
    "totpCode",
    "mfa_code",
    "2fa_code",
    "two_factor_code",
    "one_time_code",
    "verification_code",
    "verificationCode",
    "email_verification_code",
    "confirmation_code",
    "security_code",
    "sms_code",
    "login_code",
    "reset_code",
    "device_code",
    "passcode",
    "email_code",
    # Links that log in or reset by themselves (their token may sit in the path).
    "reset_link",
    "reset_url",
    "magic_link",
    "recovery_link",
    "invite_url",
    "verification_uri",
    # Recovery and backup codes.
    "recovery_codes",
    "recovery_code",
    "backup_codes",
    "scratch_codes",
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
    # Identifiers of secrets are not secrets.
    "token_uuid",
    "token_identifier",
    "token_id",
    "tokenId",
    "api_key_id",
    "key_id",
    "secret_name",
    "token_name",
    "password_change_date",
    # Session look-alikes: counters, durations, settings.
    "session_count",
    "session_expiry",
    "session_duration",
    "session_timeout",
    "session_idle_timeout",
    "session_cookie_age",
    "session_cookie_name",
    "session_state",
    "sessions_revoked_count",
    "objectSid",
    # One-time-code look-alikes: flags, devices, methods.
    "otp_enabled",
    "otp_verified",
    "otp_device",
    "totp_device_name",
    "mfa",
    "mfa_devices",
    "mfa_required",
    "2fa_enabled",
    "recovery_codes_remaining",
    "recovery_code_used",
    "recovery_codes_count",
    # Codes that are not credentials.
    "code",
    "country_code",
    "status_code",
    "error_code",
    "language_code",
    "footprint",
    "user_code",
    # Links that are not credentials.
    "url",
    "link",
    "redirect_url",
    "avatar_url",
    "reset_flow",
    "recovery_email",
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


def test_a_mapping_under_a_secret_key_masks_only_its_secret_looking_keys_and_its_value() -> None:
    # Spec section 1.7: the mapping is recursed, the key itself is not masked; the value a
    # secret mapping carries is the secret (a diff's previous/new value, a cookie's value).
    assert sanitize({"credentials": {"value": "s3cr3t", "n": 3, "other": "readable"}}) == {
        "credentials": {"value": MASK, "n": 3, "other": "readable"}
    }


def test_what_describes_a_secret_inside_a_secret_mapping_stays_readable() -> None:
    # Recursed into as the reference does: the login names who, it is not the secret.
    value = {
        "credentials": {"password": "s3cr3t", "login": "ana", "username": "ana", "type": "basic"},
        "token": {"token_uuid": "ab12", "identifier": "ana-api", "expires": "2027-01-01"},
    }
    assert sanitize(value) == value | {
        "credentials": {"password": MASK, "login": "ana", "username": "ana", "type": "basic"}
    }


def test_a_map_of_named_entries_under_a_secret_key_is_recursed_as_the_reference_does() -> None:
    # Only secret-looking names inside are masked; a credential-looking value still is.
    value = {
        "api_keys": {
            "prod_key": "live-key-1234",
            "staging": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        }
    }
    assert sanitize(value) == {"api_keys": {"prod_key": MASK, "staging": MASK}}


def test_a_describing_key_follows_the_ordinary_rules_below_it() -> None:
    value = {"credentials": {"user": {"username": "ana", "password": "s3cr3t"}}}
    assert sanitize(value) == {"credentials": {"user": {"username": "ana", "password": MASK}}}


def test_the_values_of_a_secret_mapping_stay_masked() -> None:
    # A diff or a cookie posted in the clear: its values are the secret, whatever they are called.
    value = {
        "diff": {"password": {"previous_value": "old-pass", "new_value": "new-pass"}},
        "cookie": {"name": "sessionid", "value": "abcdef123456", "path": "/"},
        "token": {"raw": "raw-token-value", "hash": "c2VjcmV0", "data": "opaque-blob-1234"},
    }
    assert sanitize(value) == {
        "diff": {"password": {"previous_value": MASK, "new_value": MASK}},
        "cookie": {"name": "sessionid", "value": MASK, "path": "/"},
        "token": {"raw": MASK, "hash": MASK, "data": MASK},
    }


def test_a_session_mapping_has_its_id_masked_and_its_metadata_kept() -> None:
    value = {"session": {"id": "s3ss10n-1d", "key": "k3y", "expiry": "2026-12-07", "user": 5}}
    assert sanitize(value) == {
        "session": {"id": MASK, "key": MASK, "expiry": "2026-12-07", "user": 5}
    }


def test_a_list_of_session_mappings_keeps_what_names_them() -> None:
    value = {"sessions": [{"session_key": "abc123xyz", "last_ip": "192.0.2.1"}, "raw-id-12345"]}
    assert sanitize(value) == {"sessions": [{"session_key": MASK, "last_ip": "192.0.2.1"}, MASK]}


def test_recovery_codes_are_masked_one_by_one() -> None:
    value = {"recovery_codes": ["a1b2-c3d4", "e5f6-a7b8"], "backup_codes": ("12345678",)}
    assert sanitize(value) == {"recovery_codes": [MASK, MASK], "backup_codes": [MASK]}


def test_identifiers_of_secrets_in_a_token_diff_stay_readable() -> None:
    value = {
        "diff": {
            "token_uuid": {"previous_value": None, "new_value": "1e399dbfbb304d0facf3a5275e065cd0"},
            "identifier": {"previous_value": None, "new_value": "ana-api"},
            "key": {"previous_value": None, "new_value": "the-token-key-itself"},
        }
    }
    assert sanitize(value) == {
        "diff": {
            "token_uuid": {"previous_value": None, "new_value": "1e399dbfbb304d0facf3a5275e065cd0"},
            "identifier": {"previous_value": None, "new_value": "ana-api"},
            "key": {"previous_value": None, "new_value": MASK},
        }
    }


@pytest.mark.django_db
def test_creating_a_token_records_its_uuid_readable_and_its_key_masked() -> None:
    from auditlog.models import Event, EventAction
    from directory.models import Token, TokenIntent

    ana = User.objects.create_user("ana")
    token = Token.objects.create(user=ana, identifier="ana-api", intent=TokenIntent.API)
    event = Event.objects.get(action=EventAction.MODEL_CREATED, context__model__pk=token.pk.hex)
    diff = event.context["diff"]
    assert diff["token_uuid"] == {"previous_value": None, "new_value": token.pk.hex}
    assert diff["key"] == {"previous_value": None, "new_value": MASK}
    assert token.key not in str(event.context)


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


def test_session_ids_and_codes_in_query_strings_are_masked() -> None:
    value = {
        "link": "/app/?PHPSESSID=abc123def456&next=/home",
        "callback": "/verify/?otp=123456&verification_code=987654&lang=en",
        "args": {"connect.sid": "s%3Aabc.def", "JSESSIONID": "0123ABCD", "page": "2"},
    }
    assert sanitize(value) == {
        "link": f"/app/?PHPSESSID={MASK}&next=/home",
        "callback": f"/verify/?otp={MASK}&verification_code={MASK}&lang=en",
        "args": {"connect.sid": MASK, "JSESSIONID": MASK, "page": "2"},
    }


def test_session_cookies_inside_a_cookie_header_text_are_masked() -> None:
    value = {"raw": "sessionid=abc123def456; csrftoken=xyz987; theme=dark; laravel_session=q1w2e3"}
    assert sanitize(value) == {
        "raw": f"sessionid={MASK}; csrftoken={MASK}; theme=dark; laravel_session={MASK}"
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


def test_sanitizing_twice_changes_nothing() -> None:
    # Stored contexts pass the policy again on the way out (API, webhooks): it must be stable.
    value = {
        "credentials": {"password": "s3cr3t", "login": "ana", "n": 3},
        "session": {"id": "abc123def", "expiry": "2026-12-07"},
        "diff": {"token_uuid": {"previous_value": None, "new_value": "ab12"}},
        "recovery_codes": ["a1b2-c3d4"],
        "raw": "sessionid=abc123def; theme=dark",
        "link": "/app/?PHPSESSID=abc123def456&next=/home",
    }
    once = sanitize(value)
    assert sanitize(once) == once
