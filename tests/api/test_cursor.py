"""``GET /api/v3/events/events/?after=<position>``: the list's gap-free pull cursor."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from auditlog import chain
from auditlog.models import Event, EventChainLink
from auditlog.positions import head_position
from auditlog.services import record_event, record_events
from directory.models import User

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"


def _write(action: str, n: int = 1, **kwargs: Any) -> list[Event]:
    events = [record_event(action=action, app="tests", **kwargs) for _ in range(n)]
    chain.seal_pending()
    return events


def _poll(client: Any, position: int, **params: Any) -> tuple[list[dict[str, Any]], int, bool]:
    response = client.get(EVENTS, {"after": position, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"], body["next_position"], body["has_more"]


def _drain(client: Any, position: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Everything after ``position``, paging with ``after`` until caught up."""
    seen: list[dict[str, Any]] = []
    while True:
        results, position, more = _poll(client, position, **params)
        seen += results
        if not more:
            return seen, position


def test_a_poller_sees_every_event_once_in_commit_order(api_as, auditor: User) -> None:
    client = api_as(auditor)
    start = head_position()
    _write("login", 5)
    first, position, more = _poll(client, start, page_size=2)
    assert len(first) == 2 and more
    rest, position = _drain(client, position, page_size=2)
    seen = first + rest
    expected = list(
        EventChainLink.objects.filter(sequence__gt=start)
        .order_by("sequence")
        .values_list("sequence", "event_uuid")
    )
    assert [(row["position"], row["pk"]) for row in seen] == [
        (sequence, str(uuid)) for sequence, uuid in expected
    ]
    assert len(seen) >= 5 and position == head_position()
    # Caught up: nothing more, and the position stays.
    assert _poll(client, position) == ([], position, False)


def test_an_event_created_earlier_but_committed_later_is_not_missed(api_as, auditor) -> None:
    client = api_as(auditor)
    start = head_position()
    (later,) = _write("logout")
    seen, position = _drain(client, start, action="logout")
    assert [row["pk"] for row in seen] == [str(later.event_uuid)]
    # An event whose clock reads earlier than the one already read arrives afterwards (a
    # transaction that committed late, or an import keeping its time): polling by `created`
    # would never ask for it again; the cursor hands it over once.
    (earlier,) = record_events(
        [
            {
                "action": "logout",
                "app": "tests",
                "created": later.created - timedelta(seconds=30),
                "pk": "8f1c8ad8-64c2-4a5c-9f0e-3f1f3bc0a0a1",
            }
        ],
        keep_identity=True,
    )
    chain.seal_pending()
    assert Event.objects.get(event_uuid=earlier.event_uuid).created < later.created
    seen, position = _drain(client, position, action="logout")
    assert [row["pk"] for row in seen] == [str(earlier.event_uuid)]
    assert _drain(client, position, action="logout") == ([], position)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_commits_late_is_read_after_it_commits(auditor: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("two writers at once need PostgreSQL (SQLite has one writer)")
    client = Client()
    client.force_login(auditor)
    start = head_position()
    opened, release = threading.Event(), threading.Event()

    def late_writer() -> None:
        try:
            with transaction.atomic():
                record_event(action="login", app="late")
                opened.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=late_writer)
    writer.start()
    assert opened.wait(10)
    (logout,) = _write("logout")  # created after the open transaction's event, committed first
    early, position = _drain(client, start)
    assert str(logout.event_uuid) in [row["pk"] for row in early]
    assert "late" not in [row["app"] for row in early]
    release.set()
    writer.join(10)
    chain.seal_pending()
    seen, position = _drain(client, position)
    assert [row["app"] for row in seen] == ["late"]
    late = Event.objects.get(event_uuid=seen[0]["pk"])
    assert late.created < logout.created
    assert _drain(client, position) == ([], position)


def test_filters_and_search_apply_and_the_position_moves_past_the_rest(api_as, auditor) -> None:
    client = api_as(auditor)
    start = head_position()
    _write("login", 2, context={"where": "north"})
    _write("logout", 2)
    _write("login", 1, context={"where": "south"})
    seen, position = _drain(client, start, action="login")
    assert [row["action"] for row in seen] == ["login"] * 3
    assert position == head_position()
    searched, _ = _drain(client, start, search='context.where = "south"')
    assert [row["context"]["where"] for row in searched] == ["south"]
    assert all(set(row) >= {"pk", "action", "context", "position"} for row in searched)


def test_bad_positions_are_refused_with_a_message(api_as, auditor) -> None:
    client = api_as(auditor)
    for raw in ("abc", "-1", "1.5", ""):
        response = client.get(EVENTS, {"after": raw})
        assert response.status_code == 400
        assert "non-negative whole number" in response.json()["after"][0]
    response = client.get(f"{EVENTS}?after=1&after=2")
    assert response.status_code == 400 and response.json()["after"]


@pytest.mark.parametrize("param", ["ordering", "page"])
def test_ordering_and_page_do_not_combine_with_a_cursor(api_as, auditor, param) -> None:
    response = api_as(auditor).get(EVENTS, {"after": 0, param: "1" if param == "page" else "pk"})
    assert response.status_code == 400
    assert "cannot be combined with after" in response.json()[param][0]


def test_page_size_bounds_apply(api_as, auditor) -> None:
    response = api_as(auditor).get(EVENTS, {"after": 0, "page_size": 0})
    assert response.status_code == 400 and response.json()["page_size"]


def test_the_cursor_needs_the_right_to_read_events(api_as, nobody, auditor) -> None:
    _write("login")
    assert api_as(None).get(EVENTS, {"after": 0}).status_code == 403
    assert api_as(nobody).get(EVENTS, {"after": 0}).status_code == 403
    assert api_as(auditor).get(EVENTS, {"after": 0}).status_code == 200


def test_the_answer_keeps_authentiks_shape(api_as, auditor) -> None:
    client = api_as(auditor)
    start = head_position()
    _write("login", 3)
    body = client.get(EVENTS, {"after": start, "page_size": 2}).json()
    assert set(body) == {"pagination", "results", "autocomplete", "next_position", "has_more"}
    assert body["pagination"] == {
        "next": 0,
        "previous": 0,
        "count": 2,
        "current": 1,
        "total_pages": 1,
        "start_index": 1,
        "end_index": 2,
    }
    assert body["next_position"] == body["results"][-1]["position"]
    plain = client.get(EVENTS, {"page_size": 2}).json()
    assert set(plain) == {"pagination", "results", "autocomplete"}
    assert "position" not in plain["results"][0]
    empty = client.get(EVENTS, {"after": head_position()}).json()
    assert empty["pagination"]["start_index"] == 0 and empty["pagination"]["end_index"] == 0


def test_the_schema_documents_the_cursor(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    schema = json.loads(client.get("/api/v3/schema/", {"format": "json"}).content)
    operation = schema["paths"][EVENTS]["get"]
    after = next(p for p in operation["parameters"] if p["name"] == "after")
    assert after["schema"] == {"type": "integer", "minimum": 0}
    assert "commit order" in after["description"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in answer:
        answer = schema["components"]["schemas"][answer["$ref"].rsplit("/", 1)[1]]
    assert {"next_position", "has_more"} <= set(answer["properties"])
    assert set(answer["required"]) == {"pagination", "results", "autocomplete"}


def test_the_queries_do_not_grow_with_the_page(api_as, auditor) -> None:
    client = api_as(auditor)
    start = head_position()
    _write("login", 30)
    client.get(EVENTS, {"after": start, "page_size": 2})  # warm the token and introspection
    counts = []
    for size in (2, 30):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(EVENTS, {"after": start, "page_size": size}).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts
