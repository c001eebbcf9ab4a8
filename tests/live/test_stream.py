"""The event stream over a real (threaded) server: resuming after a disconnect, filters and
search, and what is refused before it starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auditlog.services import record_event
from tests.live.sse import open_stream

STREAM = "/api/v3/events/events/stream/"


def write(name: str, **context: Any) -> str:
    """A new event, committed (and so sealed at once: tasks run in-process here)."""
    return str(record_event(action=name, app="tests", context=context).pk)


@pytest.fixture
def token(auditor: Any, make_token: Callable[..., str]) -> str:
    return make_token(auditor)


def test_a_client_that_reconnects_gets_exactly_the_missed_events_in_commit_order(
    live_server: Any, token: str
) -> None:
    before = write("before")  # already there: a new stream starts after it
    stream = open_stream(live_server.url, STREAM, token=token)
    first = write("first")
    [(first_id, event)] = stream.events(1)
    assert event["pk"] == first and event["action"] == "custom_first"
    assert event["app"] == "tests" and "created" in event  # the list's JSON
    stream.close()

    missed = [write(f"missed_{n}") for n in range(5)]

    again = open_stream(live_server.url, STREAM, token=token, last_event_id=str(first_id))
    received = again.events(5)
    assert [event["pk"] for _, event in received] == missed
    ids = [position for position, _ in received]
    assert ids == sorted(ids) and ids[0] > first_id
    later = write("later")
    [(later_id, event)] = again.events(1)
    assert event["pk"] == later and later_id > ids[-1]
    assert again.quiet(1.0) == []  # nothing twice
    again.close()

    # ?after= is the same thing for clients that cannot set the header.
    resumed = open_stream(live_server.url, f"{STREAM}?after={first_id}", token=token)
    assert [event["pk"] for _, event in resumed.events(6)] == [*missed, later]
    resumed.close()
    assert before not in missed


def test_the_stream_has_the_lists_search_and_filters(live_server: Any, token: str) -> None:
    searched = open_stream(live_server.url, f'{STREAM}?search=context.tier = "gold"', token=token)
    filtered = open_stream(live_server.url, f"{STREAM}?action=custom_match", token=token)
    bronze = write("match", tier="bronze")
    gold = write("other", tier="gold")
    silver = write("match", tier="silver")
    assert [event["pk"] for _, event in searched.events(1)] == [gold]
    assert [event["pk"] for _, event in filtered.events(2)] == [bronze, silver]
    assert searched.quiet(1.0) == [] and filtered.quiet(0.1) == []
    # A narrow stream's keep-alives carry the position it has looked through.
    assert searched.last_id is not None and int(searched.last_id) >= 3
    searched.close()
    filtered.close()
