"""What a client sees when the database cannot be reached (the end-to-end restart is in
test_database_restart.py): the API answers a 503 with a JSON message and Retry-After, the
web admin a "temporarily unavailable" page; other errors keep their 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client

from auditlog.api.views import EventViewSet
from auditlog.middleware import AuditMiddleware

pytestmark = pytest.mark.django_db

GONE = OperationalError("server closed the connection unexpectedly")


def raises(exc: Exception) -> Any:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return broken


def api_get(user: Any, make_token: Any) -> Any:
    client = Client(raise_request_exception=False)
    return client.get("/api/v3/events/events/", HTTP_AUTHORIZATION=f"Bearer {make_token(user)}")


@pytest.mark.parametrize("error", [GONE, InterfaceError("connection already closed")])
def test_the_api_answers_503_with_a_message_when_the_database_is_unreachable(
    admin_user, make_token, monkeypatch, error
) -> None:
    monkeypatch.setattr(EventViewSet, "list", raises(error))
    response = api_get(admin_user, make_token)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "detail": "The database is unavailable at the moment (it may be restarting). "
        "Try again in a few seconds.",
        "code": "database_unavailable",
    }


def test_a_database_failure_before_the_api_view_is_a_503_json_answer_too(
    admin_user, make_token, monkeypatch
) -> None:
    monkeypatch.setattr(AuditMiddleware, "__call__", raises(GONE))
    response = api_get(admin_user, make_token)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


def test_the_web_admin_shows_a_temporarily_unavailable_page(admin_user, monkeypatch) -> None:
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    monkeypatch.setattr(SessionStore, "load", raises(GONE))
    response = browser.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "database is unavailable" in page


def test_other_errors_in_the_web_admin_keep_the_server_error_page(admin_user, monkeypatch):
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    monkeypatch.setattr(SessionStore, "load", raises(RuntimeError("a bug")))
    response = browser.get("/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
