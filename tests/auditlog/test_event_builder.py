"""Building and recording one event (the recording service), with authentik's semantics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.utils import timezone

from auditlog.models import Event, EventAction, SystemSettings
from auditlog.sanitize import MASK
from auditlog.services import build_event, record_event
from directory.brands import forget_brands
from directory.models import Brand, User
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_a_plain_string_action_becomes_a_custom_action() -> None:
    assert build_event(action="foo").action == "custom_foo"
    assert build_event(action=EventAction.CUSTOM_PREFIX).action == "custom_"
    assert build_event(action=EventAction.LOGIN).action == "login"


def test_the_app_is_the_calling_module_unless_given() -> None:
    assert build_event(action="foo").app == __name__
    assert build_event(action="foo", app="testing").app == "testing"


def test_keyword_arguments_become_the_sanitised_context() -> None:
    event = build_event(
        action="foo",
        context={"user_pk": 3, "password": "hunter2", "when": timezone.datetime(2026, 1, 1)},
    )
    assert event.context == {"user_pk": 3, "password": MASK, "when": "2026-01-01T00:00:00"}


def test_building_does_not_save() -> None:
    build_event(action="foo")
    assert not Event.objects.exists()


def test_created_is_always_the_time_of_the_first_save() -> None:
    event = build_event(action="foo")
    event.created = timezone.now() - timedelta(days=6)
    event.save()
    assert timezone.now() - event.created < timedelta(minutes=1)


def test_expires_is_creation_plus_the_retention(settings) -> None:
    settings.EVENT_RETENTION = timedelta(days=3)
    event = record_event(action="foo", app="tests")
    assert abs(event.expires - event.created - timedelta(days=3)) < timedelta(seconds=5)


def test_the_retention_set_in_the_system_settings_wins() -> None:
    SystemSettings.objects.create(pk=1, event_retention="weeks=3")
    event = record_event(action="foo", app="tests")
    assert abs(event.expires - event.created - timedelta(weeks=3)) < timedelta(seconds=5)


def test_events_default_to_the_default_brand() -> None:
    forget_brands()
    event = record_event(action="foo", app="tests")
    default = Brand.objects.get(default=True)
    assert event.brand == {
        "app": "directory",
        "model_name": "brand",
        "pk": default.pk.hex,
        "name": default.name,
    }


def test_a_named_user_is_stored_in_the_user_shape() -> None:
    user = User.objects.create_user("ana", "ana@example.com")
    event = build_event(action="foo", user=user)
    assert event.user == {"username": "ana", "pk": user.pk, "email": "ana@example.com"}


def test_an_exception_records_message_and_frames() -> None:
    try:
        raise ValueError("it broke")
    except ValueError as exc:
        event = build_event(action="foo", exception=exc)
    assert event.context["message"] == "it broke"
    [entry] = event.context["exception"]
    assert entry["exc_type"] == "ValueError"
    assert entry["exc_value"] == "it broke"
    assert entry["frames"][-1]["name"] == "test_an_exception_records_message_and_frames"


def test_a_request_records_the_request_and_masks_secrets_in_its_arguments() -> None:
    user = User.objects.create_user("ana", "ana@example.com")
    request = RequestFactory().get("/some/path/?token=abc&next=/home", HTTP_USER_AGENT="agent/1.0")
    request.user = user
    event = record_event(action="foo", app="tests", request=request)
    event.refresh_from_db()
    assert event.context["http_request"] == {
        "args": {"token": MASK, "next": "/home"},
        "method": "GET",
        "path": "/some/path/",
        "user_agent": "agent/1.0",
    }
    assert event.user == {"username": "ana", "pk": user.pk, "email": "ana@example.com"}
    assert event.client_ip == "127.0.0.1"


def test_a_request_with_a_user_argument_overrides_the_request_user() -> None:
    ana = User.objects.create_user("ana")
    ben = User.objects.create_user("ben")
    request = RequestFactory().get("/")
    request.user = ana
    event = record_event(action="foo", app="tests", request=request, user=ben)
    assert event.user["username"] == "ben"


def test_an_anonymous_request_is_recorded_as_the_anonymous_user() -> None:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    event = record_event(action="foo", app="tests", request=request)
    assert event.user["is_anonymous"] is True
    assert event.user["username"] == "AnonymousUser"


def test_a_request_records_the_request_brand() -> None:
    brand = Brand.objects.create(domain="test-brand.example.com", name="Brand test-brand")
    request = RequestFactory().get("/")
    request.brand = brand
    event = record_event(action="foo", app="tests", request=request)
    assert event.brand == {
        "app": "directory",
        "model_name": "brand",
        "name": "Brand test-brand",
        "pk": brand.pk.hex,
    }


def test_the_client_ip_honours_forwarded_for_only_from_a_trusted_proxy(settings) -> None:
    factory = RequestFactory()
    trusted = factory.get("/", HTTP_X_FORWARDED_FOR="81.2.69.142", REMOTE_ADDR="127.0.0.1")
    assert record_event(action="foo", app="tests", request=trusted).client_ip == "81.2.69.142"
    chain = factory.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 81.2.69.142", REMOTE_ADDR="127.0.0.1")
    assert record_event(action="foo", app="tests", request=chain).client_ip == "81.2.69.142"
    spoofed = factory.get("/", HTTP_X_FORWARDED_FOR="81.2.69.142", REMOTE_ADDR="203.0.113.9")
    assert record_event(action="foo", app="tests", request=spoofed).client_ip == "203.0.113.9"
    garbage = factory.get("/", HTTP_X_FORWARDED_FOR="not-an-ip", REMOTE_ADDR="127.0.0.1")
    assert record_event(action="foo", app="tests", request=garbage).client_ip == "127.0.0.1"


def test_a_request_adds_geo_and_asn_for_the_client_address(geoip_dbs) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="2.125.160.216")
    event = record_event(action="foo", app="tests", request=request)
    assert event.context["geo"] == {
        "city": "Boxford",
        "continent": "EU",
        "country": "GB",
        "lat": 51.75,
        "long": -1.25,
    }


def test_the_request_id_is_recorded(client, admin_user) -> None:
    request = RequestFactory().get("/")
    request.request_id = "abc123"
    event = record_event(action="foo", app="tests", request=request)
    assert event.context["http_request"]["request_id"] == "abc123"


def test_summary_hyperlink_and_string() -> None:
    event = build_event(
        action="foo", context={"message": "Hello", "hyperlink": "/x/", "hyperlink_label": "Open"}
    )
    assert event.summary == "Hello"
    assert event.hyperlink == "/x/"
    assert event.hyperlink_label == "Open"
    assert build_event(action="bar", context={"n": 1}).summary == "custom_bar: {'n': 1}"
    assert str(build_event(action="bar")) == "Event action=custom_bar user={} context={}"


def test_secrets_set_directly_on_the_context_are_masked_when_saved() -> None:
    event = Event(action=EventAction.LOGIN, app="x", context={"password": "plain"})
    event.save()
    event.refresh_from_db()
    assert event.context == {"password": MASK}


def test_the_action_list_is_the_target_releases() -> None:
    values = set(EventAction.values)
    assert {"user_offboarded", "export_ready", "model_updated", "custom_"} <= values
    assert {f"access_request_{verb}" for verb in ("created", "approved", "denied", "revoked")} <= (
        values
    )
    # Newer than authentik 2026.8: written as 2026.8 writes them (auditlog/compat.py).
    assert not {"user_created", "login_blocked"} & values
    assert EventAction.INVITE_USED.label == "Invite Used"
    assert EventAction.CUSTOM_PREFIX.label == "Custom Prefix"


def test_notification_string_truncates_the_body() -> None:
    user = User.objects.create_user("ana")
    notification = Notification.objects.create(user=user, body="x" * 100)
    assert str(notification) == f"Notification for user {user.pk}: {'x' * 75}.."


def test_session_backed_requests_work(client) -> None:
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    assert record_event(action="foo", app="tests", request=request).pk
