"""What the stream refuses, before anything streams: the list's answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

STREAM = "/api/v3/events/events/stream/"


@pytest.fixture
def client(api_as: Callable[[Any], APIClient], auditor: Any) -> APIClient:
    return api_as(auditor)


def test_a_malformed_search_is_a_400_with_where_it_is_wrong(client: APIClient) -> None:
    response = client.get(STREAM, {"search": 'action = "login" and ('})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["search"]["line"] == 1 and body["search"]["column"] is not None
    # The list says the same about the same search.
    listed = client.get("/api/v3/events/events/", {"search": 'action = "login" and ('})
    assert listed.json() == body


@pytest.mark.parametrize("position", ["abc", "-1", "1.5", "12 13"])
def test_a_last_event_id_that_is_not_a_position_is_a_400(client: APIClient, position: str) -> None:
    response = client.get(STREAM, HTTP_LAST_EVENT_ID=position)
    assert response.status_code == 400
    [message] = response.json()["Last-Event-ID"]
    assert "non-negative whole number" in message


def test_after_that_is_not_a_position_is_a_400(client: APIClient) -> None:
    response = client.get(STREAM, {"after": "yesterday"})
    assert response.status_code == 400
    assert "after must be a non-negative whole number" in response.json()["after"][0]


def test_a_bad_filter_is_a_400_naming_it(client: APIClient) -> None:
    response = client.get(STREAM, {"client_ip": "not-an-address"})
    assert response.status_code == 400
    assert "client_ip" in response.json()


def test_clients_without_the_right_to_read_events_are_refused_like_on_the_list(
    api_as: Callable[[Any], APIClient], nobody: Any
) -> None:
    for client in (APIClient(), api_as(nobody)):
        refused = client.get(STREAM, HTTP_ACCEPT="text/event-stream")
        listed = client.get("/api/v3/events/events/")
        assert refused.status_code == listed.status_code == 403
        assert refused.json() == listed.json()


def test_a_reader_gets_an_event_stream(client: APIClient) -> None:
    response = client.get(STREAM, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    first = next(iter(response.streaming_content))
    assert first.startswith(b"retry: ")
    response.close()


def test_the_stream_is_in_the_openapi_schema(client: APIClient, admin_user: Any) -> None:
    client.force_authenticate(admin_user)
    schema = client.get("/api/v3/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v3/events/events/stream/"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"Last-Event-ID", "after", "search", "action", "client_ip"} <= names
    assert set(operation["responses"]) >= {"200", "400", "403"}
