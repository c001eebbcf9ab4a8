"""Hostile or broken input gets a clear 4xx with a message, and nothing is stored half-way."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from auditlog.models import Event

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"


@pytest.fixture
def writer(admin_user, make_token):
    key = make_token(admin_user)

    def post(body: bytes | str, content_type: str = "application/json", **extra):
        return Client().post(
            EVENTS, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {key}", **extra
        )

    return post


def nested(depth: int) -> str:
    return '{"action":"login","app":"x","context":' + '{"a":' * depth + "1" + "}" * depth + "}"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ("{not json", 400, "JSON parse error"),
        ("", 400, "This field is required."),
        ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
        (nested(40), 400, "nested deeper than 32 levels"),
        (b'{"action": "login", "app": "\xff\xfe"}', 400, "JSON parse error"),
        ('{"action": "teleport", "app": "x"}', 400, "not a known action"),
        (
            '{"action": "login", "app": "x", "client_ip": "300.1.1.1"}',
            400,
            "not a valid IP address",
        ),
        ('{"action": "login", "app": "x", "context": "text"}', 400, "Expected a JSON object"),
        ("[1, 2, 3]", 400, "Invalid data"),
    ],
)
def test_bad_bodies_are_4xx_and_store_nothing(writer, body, status: int, fragment: str) -> None:
    before = Event.objects.count()
    response = writer(body)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert fragment in response.content.decode()
    assert Event.objects.count() == before


def test_a_huge_body_is_a_413_with_a_message(writer, settings) -> None:
    settings.API_MAX_BODY_BYTES = 64 * 1024
    before = Event.objects.count()
    body = json.dumps({"action": "login", "app": "x", "context": {"a": "x" * 100_000}})
    response = writer(body)
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: the limit is 65536 bytes."}
    assert Event.objects.count() == before


def test_a_body_just_under_the_nesting_limit_is_stored_whole(writer) -> None:
    response = writer(nested(25))
    assert response.status_code == 201
    context = Event.objects.get(pk=response.json()["pk"]).context
    depth = 0
    while isinstance(context, dict):
        context = context["a"]
        depth += 1
    assert depth == 25 and context == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page_size": "1000000"}, 400),
        ({"page_size": "-5"}, 400),
        ({"page_size": "1e3"}, 400),
        ({"page": "99999999999999999999"}, 404),
        ({"page": "-1"}, 404),
        ({"search": "action = = ="}, 400),
        ({"search": 'context.geo.country in ("DE"'}, 400),
        ({"client_ip": "::zz"}, 400),
        ({"actions": "nope"}, 400),
        ({"ordering": "-secret"}, 400),
        ({"search": "\xff\xfe broken"}, 200),
    ],
)
def test_bad_query_parameters_are_4xx(api_as, admin_user, params: dict, status: int) -> None:
    response = api_as(admin_user).get(EVENTS, params)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"


def test_a_non_utf8_query_string_is_not_a_server_error(admin_user, make_token) -> None:
    key = make_token(admin_user)
    response = Client().get(EVENTS + "?search=%ff%fe&page=%80", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code in (200, 404)
