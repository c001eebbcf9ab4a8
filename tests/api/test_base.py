"""The API's base: JSON by default, gzip, ISO dates, authentik's authentication messages,
its pagination, and the generated schema."""

from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from auditlog.models import Event
from auditlog.services import record_event
from directory.models import Token, TokenIntent, User

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def make_events(count: int) -> list[Event]:
    events = []
    for index in range(count):
        events.append(record_event(action="foo", app="tests", context={"index": index}))
    return events


def test_json_is_returned_when_the_client_sends_no_accept_header(admin_user, make_token) -> None:
    key = make_token(admin_user)
    response = Client().get(EVENTS, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "results" in json.loads(response.content)


def test_gzip_is_used_when_the_client_accepts_it(admin_user, make_token) -> None:
    make_events(30)
    key = make_token(admin_user)
    response = Client().get(EVENTS, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    body = json.loads(gzip.decompress(response.content))
    assert body["pagination"]["count"] >= 30


def test_datetimes_are_iso_8601_with_t_and_z(api_as, admin_user) -> None:
    make_events(1)
    result = api_as(admin_user).get(EVENTS).json()["results"][0]
    assert ISO_Z.match(result["created"]), result["created"]
    assert ISO_Z.match(result["expires"]), result["expires"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("", "Authentication credentials were not provided."),
        ("Basic dXNlcjpwYXNz", "Unsupported authentication type"),
        ("Bearer ", "Malformed header"),
        ("Bearer a b", "Malformed header"),
        ("Bearer not-a-real-token", "Token invalid/expired"),
    ],
)
def test_credentials_are_refused_with_authentiks_messages(
    db, header: str | None, message: str
) -> None:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(EVENTS)
    assert response.status_code == 403
    assert response.json() == {"detail": message}


def test_only_api_tokens_authenticate(admin_user, make_token) -> None:
    key = make_token(admin_user, intent=TokenIntent.APP_PASSWORD)
    response = Client().get(EVENTS, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403
    assert response.json() == {"detail": "Token invalid/expired"}


def test_expired_tokens_and_inactive_users_are_refused(admin_user, make_token) -> None:
    key = make_token(admin_user)
    Token.objects.filter(key=key).update(expires=timezone.now() - timedelta(seconds=1))
    assert Client().get(EVENTS, HTTP_AUTHORIZATION=f"Bearer {key}").json() == {
        "detail": "Token invalid/expired"
    }
    other = make_token(admin_user, expiring=False, expires=None)
    User.objects.filter(pk=admin_user.pk).update(is_active=False)
    response = Client().get(EVENTS, HTTP_AUTHORIZATION=f"Bearer {other}")
    assert response.status_code == 403


def test_a_session_works_for_reading_and_needs_csrf_for_writing(admin_user) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get(EVENTS).status_code == 200
    response = client.post(
        EVENTS, {"action": "custom_x", "app": "t"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_pagination_has_authentiks_shape(api_as, admin_user) -> None:
    make_events(5)
    body = (
        api_as(admin_user).get(EVENTS, {"page_size": 2, "page": 2, "action": "custom_foo"}).json()
    )
    assert set(body) == {"pagination", "results", "autocomplete"}
    assert body["pagination"] == {
        "next": 3,
        "previous": 1,
        "count": 5,
        "current": 2,
        "total_pages": 3,
        "start_index": 3,
        "end_index": 4,
    }
    last = (
        api_as(admin_user).get(EVENTS, {"page_size": 2, "page": 3, "action": "custom_foo"}).json()
    )
    assert last["pagination"]["next"] == 0
    assert last["pagination"]["end_index"] == 5
    first = api_as(admin_user).get(EVENTS, {"page_size": 2, "action": "custom_foo"}).json()
    assert first["pagination"]["previous"] == 0


def test_an_empty_collection_has_one_empty_page(api_as, admin_user) -> None:
    body = api_as(admin_user).get(EVENTS, {"action": "nothing-like-this"}).json()
    assert body["results"] == []
    assert body["pagination"] == {
        "next": 0,
        "previous": 0,
        "count": 0,
        "current": 1,
        "total_pages": 1,
        "start_index": 0,
        "end_index": 0,
    }


def test_page_size_goes_up_to_the_maximum_and_no_further(api_as, admin_user, settings) -> None:
    make_events(3)
    client = api_as(admin_user)
    assert client.get(EVENTS, {"page_size": 1000}).status_code == 200
    too_big = client.get(EVENTS, {"page_size": settings.API_MAX_PAGE_SIZE + 1})
    assert too_big.status_code == 400
    assert "page_size" in too_big.json()
    assert client.get(EVENTS, {"page_size": "lots"}).status_code == 400
    assert client.get(EVENTS, {"page_size": 0}).status_code == 400


@pytest.mark.parametrize("page", ["99", "0", "-1", "abc"])
def test_an_invalid_page_is_a_404_like_authentik(api_as, admin_user, page: str) -> None:
    make_events(2)
    response = api_as(admin_user).get(EVENTS, {"page": page})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


def test_events_created_at_the_same_moment_are_ordered_by_pk(api_as, admin_user) -> None:
    events = make_events(6)
    moment = timezone.now()
    Event.objects.filter(pk__in=[e.pk for e in events]).update(created=moment)
    client = api_as(admin_user)
    pages = [
        client.get(EVENTS, {"page_size": 2, "page": page, "action": "custom_foo"}).json()["results"]
        for page in (1, 2, 3)
    ]
    seen = [row["pk"] for page in pages for row in page]
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen, reverse=True)


def test_the_schema_describes_every_endpoint(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.get("/api/v3/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = set(schema["paths"])
    for path in [
        "/api/v3/events/events/",
        "/api/v3/events/events/{pk}/",
        "/api/v3/events/events/actions/",
        "/api/v3/events/events/top_per_user/",
        "/api/v3/events/events/volume/",
        "/api/v3/events/events/stats/",
        "/api/v3/events/notifications/",
        "/api/v3/events/notifications/mark_all_seen/",
        "/api/v3/core/users/",
        "/api/v3/core/groups/",
        "/api/v3/core/groups/{pk}/add_user/",
        "/api/v3/core/tokens/{identifier}/view_key/",
    ]:
        assert path in paths, path
    parameters = {p["name"] for p in schema["paths"]["/api/v3/events/events/"]["get"]["parameters"]}
    assert {
        "action",
        "actions",
        "username",
        "client_ip",
        "context_model_pk",
        "context_model_name",
        "context_model_app",
        "context_authorized_app",
        "brand_name",
        "ordering",
        "search",
        "page",
        "page_size",
    } <= parameters
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert parameter.get("description") or parameter["schema"].get("description"), (
                    parameter
                )


def test_the_interactive_docs_are_served_without_a_cdn(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/api/v3/schema/swagger/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    assert "swagger-ui" in html


def test_the_schema_and_docs_need_a_signed_in_user(db) -> None:
    assert Client().get("/api/v3/schema/").status_code == 403
