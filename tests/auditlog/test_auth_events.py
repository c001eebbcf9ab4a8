"""Authentication events from Django's signals."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from directory.models import User

pytestmark = pytest.mark.django_db


def test_logging_in_records_login_and_no_last_login_noise(client) -> None:
    user = User.objects.create_user("ana", "ana@example.com", "correct-password-1")
    assert client.login(username="ana", password="correct-password-1")
    [event] = Event.objects.filter(action=EventAction.LOGIN)
    assert event.user == {"username": "ana", "pk": user.pk, "email": "ana@example.com"}
    assert event.app == "auditlog.signals"
    assert not Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__diff__has_key="last_login"
    ).exists()
    user.refresh_from_db()
    assert user.last_login is not None


def test_a_failed_login_keeps_the_username_and_masks_the_password() -> None:
    user = User.objects.create_user("ana", "ana@example.com", "correct-password-1")
    request = RequestFactory().post("/login/", REMOTE_ADDR="81.2.69.142")
    assert authenticate(request, username="ana", password="wrong-password-9") is None
    [event] = Event.objects.filter(action=EventAction.LOGIN_FAILED)
    assert event.context["username"] == "ana"
    assert event.context["password"] == MASK
    assert event.user["pk"] == user.pk
    assert event.client_ip == "81.2.69.142"
    assert "wrong-password-9" not in str(event.context)


def test_a_failed_login_for_an_unknown_name_is_anonymous() -> None:
    authenticate(RequestFactory().post("/login/"), username="ghost", password="x")
    [event] = Event.objects.filter(action=EventAction.LOGIN_FAILED)
    assert event.context["username"] == "ghost"
    assert event.user["is_anonymous"] is True


def test_logging_out_records_logout(client) -> None:
    User.objects.create_user("ana", "ana@example.com", "correct-password-1")
    client.login(username="ana", password="correct-password-1")
    client.logout()
    [event] = Event.objects.filter(action=EventAction.LOGOUT)
    assert event.user["username"] == "ana"


def test_an_inactive_user_cannot_log_in_and_the_attempt_is_recorded() -> None:
    User.objects.create_user("ana", "ana@example.com", "correct-password-1", is_active=False)
    assert (
        authenticate(RequestFactory().post("/"), username="ana", password="correct-password-1")
        is None
    )
    assert Event.objects.filter(action=EventAction.LOGIN_FAILED, context__username="ana").exists()
