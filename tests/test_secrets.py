"""A corpus of secrets pushed through every way into the log must never come out again: not in
the database's log tables, the API, the pages or the exports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory

from auditlog.capture import acting_user
from auditlog.models import Event
from directory.models import User
from exports.models import DataExport, ExportStatus
from notifications.models import Notification, NotificationDelivery

pytestmark = pytest.mark.django_db

# Secret-looking keys, each with a value found nowhere else.
SECRET_KEYS = [
    "password",
    "Password",
    "passwd",
    "new_password1",
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
    "api_key",
    "apikey",
    "x-api-key",
    "private_key",
    "signing_key",
    "key",
    "signature",
    "cookie",
    "HTTP_COOKIE",
    "sessionid",
    "session_key",
    "authorization",
    "auth",
    "credentials",
    "pin",
    "jwt",
    "webhook_url",
    # Session cookies and session ids of common frameworks.
    "session",
    "sessions",
    "session_id",
    "_session_id",
    "connect.sid",
    "sid",
    "PHPSESSID",
    "JSESSIONID",
    "ASP.NET_SessionId",
    "laravel_session",
    "ci_session",
    # One-time codes.
    "otp",
    "totp",
    "hotp",
    "mfa_code",
    "2fa_code",
    "verification_code",
    "passcode",
    # Recovery and backup codes.
    "recovery_code",
    # Links that log in or reset by themselves, and suffixed session cookies.
    "reset_link",
    "magic_link",
    "wordpress_logged_in_0123abcd",
]
# Lists of secrets under one key.
SECRET_LISTS = ["recovery_codes", "backup_codes"]
# Credentials recognisable by their value, under harmless keys.
SECRET_VALUES = [
    "pbkdf2_sha256$870000$corpussalt$Q29ycHVzSGFzaFZhbHVlMDAx",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMtand0LTAwMSJ9.c29tZXNpZ25hdHVyZQ",
    "-----BEGIN PRIVATE KEY-----\nQ29ycHVzUHJpdmF0ZUtleTAwMQ==\n-----END PRIVATE KEY-----",
    "AKIACORPUS0000000001",
]
EMBEDDED = {
    "header": "Bearer CorpusBearerToken001xyz",
    "dsn_text": "postgres://app:CorpusUrlPassword001@db.example.com/app",
}
EMBEDDED_SECRETS = ["CorpusBearerToken001xyz", "CorpusUrlPassword001"]
# Look-alikes: identifiers and metadata of secrets, and what describes a secret inside a secret
# mapping. Masking them is a bug too; each value must come out as it went in.
LOOKALIKES: dict[str, Any] = {
    "token_uuid": "c0ffee00c0ffee00c0ffee00c0ffee01",
    "token_identifier": "corpus-visible-token-identifier",
    "api_key_id": "corpus-visible-api-key-id",
    "session_expiry": "corpus-visible-session-expiry",
    "session_count": 71717,
    "otp_enabled": "corpus-visible-otp-enabled",
    "otp_device": "corpus-visible-otp-device",
    "mfa_devices": ["corpus-visible-mfa-device"],
    "recovery_codes_remaining": 61616,
    "country_code": "corpus-visible-country-code",
    "password_change_date": "corpus-visible-password-change-date",
}
VISIBLE = [
    "c0ffee00c0ffee00c0ffee00c0ffee01",
    "corpus-visible-token-identifier",
    "corpus-visible-api-key-id",
    "corpus-visible-session-expiry",
    "71717",
    "corpus-visible-otp-enabled",
    "corpus-visible-otp-device",
    "corpus-visible-mfa-device",
    "61616",
    "corpus-visible-country-code",
    "corpus-visible-password-change-date",
    "corpus-visible-login",
    "corpus-visible-session-user",
]


def secret_value(key: str) -> str:
    return f"Corpus-{key.replace('_', '-')}-S3cr3t-0001"


def corpus() -> dict[str, Any]:
    data: dict[str, Any] = {key: secret_value(key) for key in SECRET_KEYS}
    data.update({f"note{index}": value for index, value in enumerate(SECRET_VALUES)})
    data.update(EMBEDDED)
    data["nested"] = {
        "deeper": {"token": secret_value("nested-token")},
        "list": [{"password": secret_value("list-password")}],
    }
    data["tokens"] = [secret_value("tokens-0"), secret_value("tokens-1")]
    for key in SECRET_LISTS:
        data[key] = [secret_value(f"{key}-0"), secret_value(f"{key}-1")]
    # Inside secret mappings: the secret keys and value slots masked, the rest readable.
    data["credentials_map"] = {
        "credentials": {"password": secret_value("map-password"), "login": "corpus-visible-login"}
    }
    data["session_map"] = {
        "session": {"id": secret_value("map-session-id"), "user": "corpus-visible-session-user"}
    }
    data["diff"] = {
        "password": {
            "previous_value": secret_value("diff-old"),
            "new_value": secret_value("diff-new"),
        }
    }
    data["raw_header"] = (
        f"sessionid={secret_value('cookie-sessionid')}; theme=dark; "
        f"PHPSESSID={secret_value('cookie-phpsessid')}"
    )
    data["link"] = f"/verify/?otp={secret_value('link-otp')}&connect.sid={secret_value('link-sid')}"
    data.update(LOOKALIKES)
    return data


def all_secrets() -> list[str]:
    return [
        *(secret_value(key) for key in SECRET_KEYS),
        *SECRET_VALUES,
        *EMBEDDED_SECRETS,
        secret_value("nested-token"),
        secret_value("list-password"),
        secret_value("tokens-0"),
        secret_value("tokens-1"),
        *(secret_value(f"{key}-{index}") for key in SECRET_LISTS for index in (0, 1)),
        secret_value("map-password"),
        secret_value("map-session-id"),
        secret_value("diff-old"),
        secret_value("diff-new"),
        secret_value("cookie-sessionid"),
        secret_value("cookie-phpsessid"),
        secret_value("link-otp"),
        secret_value("link-sid"),
        secret_value("query-token"),
        secret_value("query-session"),
        secret_value("login-password"),
        "Q29ycHVzUHJpdmF0ZUtleTAwMQ",  # the private key's body
    ]


def assert_clean(where: str, text: str) -> None:
    leaked = [secret for secret in all_secrets() if secret in text]
    assert not leaked, f"{where} leaks {leaked}"


def assert_visible(where: str, text: str) -> None:
    hidden = [value for value in VISIBLE if value not in text]
    assert not hidden, f"{where} masks the look-alikes {hidden}"


def test_the_corpus_is_large_enough() -> None:
    assert len(SECRET_KEYS) >= 50
    assert len(all_secrets()) >= 70
    assert len(VISIBLE) >= 10


def test_no_way_in_lets_a_secret_out(
    admin_user, api_as, settings, tmp_path, django_capture_on_commit_callbacks, capture_path
) -> None:
    # capture_path: model changes recorded by PostgreSQL's triggers and by the signals.
    settings.MEDIA_ROOT = str(tmp_path)
    data = corpus()
    client = api_as(admin_user)
    # 1. API ingestion: one event, and a batch.
    assert (
        client.post(
            "/api/v3/events/events/",
            {
                "action": "custom_corpus",
                "app": "corpus",
                "context": data,
                "user": {
                    "username": "corpus",
                    "pk": 1,
                    "email": "",
                    "password": secret_value("password"),
                },
            },
            format="json",
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v3/events/events/bulk/",
            [{"action": "custom_corpus", "app": "corpus-bulk", "context": data}],
            format="json",
        ).status_code
        == 201
    )
    # 2. Model diffs: secrets in a JSON field, a password change, a new token's key.
    ana = User.objects.create_user("ana", password=secret_value("password"))
    with acting_user(admin_user):
        ana.attributes = data
        ana.save()
        ana.set_password(secret_value("passwd"))
        ana.save()
    # 3. Signals: a failed login with the password and extra credentials.
    authenticate(
        RequestFactory().post("/login/"), username="ana", password=secret_value("login-password")
    )
    browser = Client()
    browser.post(
        f"/login/?token={secret_value('query-token')}&next=/",
        {"username": "ana", "password": secret_value("login-password")},
    )
    # 4. Query strings recorded with a change made through the API.
    assert (
        client.patch(
            f"/api/v3/core/users/{ana.pk}/?api_key={secret_value('api_key')}&token={secret_value('query-token')}"
            f"&PHPSESSID={secret_value('query-session')}&otp={secret_value('otp')}",
            {"name": "Ana"},
            format="json",
        ).status_code
        == 200
    )
    # 5. An export of everything, in both formats.
    with django_capture_on_commit_callbacks(execute=True):
        for export_format in ("csv", "jsonl"):
            assert (
                client.post(f"/api/v3/events/events/export/?format={export_format}").status_code
                == 201
            )

    # The database's log tables (the model diffs among them, on the path under test).
    assert Event.objects.filter(
        action="model_updated", context__model__pk=ana.pk, context__diff__has_key="attributes"
    ).exists()
    for event in Event.objects.all():
        assert_clean(f"event {event.action}", json.dumps([event.user, event.context, event.brand]))
    for event in Event.objects.filter(action="custom_corpus"):
        assert_visible(f"event {event.app}", json.dumps(event.context))
    assert_clean(
        "notifications", json.dumps(list(Notification.objects.values_list("body", "hyperlink")))
    )
    assert_clean(
        "deliveries",
        json.dumps(
            list(NotificationDelivery.objects.values_list("body", "last_error", "messages"))
        ),
    )
    # The API.
    assert_clean(
        "event list", client.get("/api/v3/events/events/", {"page_size": 1000}).content.decode()
    )
    assert_clean(
        "search", client.get("/api/v3/events/events/", {"search": "corpus"}).content.decode()
    )
    corpus_event = Event.objects.get(action="custom_corpus", app="corpus")
    detail = client.get(f"/api/v3/events/events/{corpus_event.pk}/").content.decode()
    assert_clean("event detail", detail)
    assert_visible("event detail", detail)
    assert_clean("notifications API", client.get("/api/v3/events/notifications/").content.decode())
    # The pages.
    web = Client()
    web.force_login(admin_user)
    assert_clean("event log page", web.get("/events/", {"page_size": 100}).content.decode())
    for event in Event.objects.filter(app__startswith="corpus") | Event.objects.filter(
        context__model__pk=ana.pk
    ):
        assert_clean(f"event page {event.pk}", web.get(f"/events/{event.pk}/").content.decode())
        assert_clean(
            f"event info {event.pk}", web.get(f"/events/{event.pk}/info/").content.decode()
        )
    assert_visible("event page", web.get(f"/events/{corpus_event.pk}/").content.decode())
    # The exports.
    exports = DataExport.objects.filter(status=ExportStatus.COMPLETED)
    assert exports.count() == 2
    for export in exports:
        content = web.get(export.download_url)
        assert content.status_code == 200
        text = b"".join(content.streaming_content).decode()
        assert "custom_corpus" in text
        assert_clean(f"{export.format} export", text)
        assert_visible(f"{export.format} export", text)
