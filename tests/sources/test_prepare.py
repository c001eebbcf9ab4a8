"""How authentik's event JSON becomes items for the recording service: marked as imported,
a newer action kept as a custom one, an event that stays invalid skipped with the reason."""

from __future__ import annotations

import uuid

from sources.client import search_since
from sources.services import prepare


def test_an_event_is_marked_with_its_source_and_pk() -> None:
    pk = str(uuid.uuid4())
    prepared = prepare(
        [{"pk": pk, "action": "login", "app": "a", "context": {"x": 1}, "expires": "2020"}],
        source_name="corp",
        via="pull",
    )
    assert prepared.skipped == []
    [item] = prepared.items
    assert item["context"] == {
        "x": 1,
        "imported": {"source": "corp", "source_pk": pk, "via": "pull"},
    }
    assert "expires" not in item  # our retention applies


def test_an_action_the_target_does_not_know_becomes_custom_with_the_original() -> None:
    prepared = prepare(
        [{"pk": str(uuid.uuid4()), "action": "login blocked!", "app": "a"}],
        source_name="corp",
        via="pull",
    )
    [item] = prepared.items
    assert item["action"] == "custom_login_blocked_"
    assert item["context"]["imported"]["action"] == "login blocked!"


def test_events_that_stay_invalid_are_skipped_with_the_reason() -> None:
    good = {"pk": str(uuid.uuid4()), "action": "login", "app": "a"}
    prepared = prepare(
        [
            {"action": "login", "app": "a"},
            {"pk": "1", "action": "login", "app": "a", "client_ip": "999.1.1.1"},
            "junk",
            good,
        ],
        source_name="corp",
        via="pull",
    )
    assert [item["pk"] for item in prepared.items] == [good["pk"]]
    assert "imported events keep their pk" in prepared.skipped[0]
    assert "client_ip" in prepared.skipped[1] and "pk" in prepared.skipped[1]
    assert prepared.skipped[2].startswith("not an event object")


def test_the_search_rounds_down_to_the_second_in_utc() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 12, 7, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert search_since(moment) == 'created >= "2026-12-07 01:04:05"'
