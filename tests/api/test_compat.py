"""The API's compatibility target (``auditlog/compat.py``): what is accepted, and how stored
events with actions newer than the target are answered, without changing what is stored."""

from __future__ import annotations

import pytest

from auditlog import compat
from auditlog.models import Event, EventAction

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"


def test_the_target_is_authentik_2026_8() -> None:
    assert compat.TARGET_RELEASE == "2026.8"
    assert frozenset(EventAction.values) == compat.TARGET_ACTIONS
    assert not set(compat.NEWER_ACTIONS) & compat.TARGET_ACTIONS
    assert set(compat.NEWER_ACTIONS.values()) <= compat.TARGET_ACTIONS


def test_an_ingested_event_keeps_a_target_action_and_a_newer_one_is_refused_clearly(
    api_as, admin_user
) -> None:
    client = api_as(admin_user)
    kept = client.post(EVENTS, {"action": "access_request_denied", "app": "t"}, format="json")
    assert kept.status_code == 201, kept.content
    assert kept.json()["action"] == "access_request_denied"
    refused = client.post(EVENTS, {"action": "login_blocked", "app": "t"}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {
        "action": [
            "'login_blocked' is an action of authentik releases newer than 2026.8, which this "
            "API targets; send 'login_failed' instead."
        ]
    }


def test_stored_newer_actions_are_answered_as_the_targets_and_found_by_its_filters(
    api_as, admin_user
) -> None:
    client = api_as(admin_user)
    old = Event.objects.create(action="user_created", app="capture", context={"username": "x"})
    body = client.get(f"{EVENTS}{old.event_uuid}/").json()
    assert body["action"] == "model_created"
    assert body["context"] == {"username": "x", "action_in_newer_releases": "user_created"}
    for params in ({"action": "model_created"}, {"actions": ["model_created"]}):
        listed = client.get(EVENTS, params).json()["results"]
        assert str(old.event_uuid) in {item["pk"] for item in listed}, params
    volume = client.get(f"{EVENTS}volume/").json()
    assert "user_created" not in {row["action"] for row in volume}
    assert sum(row["count"] for row in volume) == Event.objects.count()
    old.refresh_from_db()
    assert old.action == "user_created" and "action_in_newer_releases" not in old.context


def test_the_actions_list_is_the_targets(api_as, admin_user) -> None:
    listed = api_as(admin_user).get(f"{EVENTS}actions/").json()
    assert {item["component"] for item in listed} == compat.TARGET_ACTIONS
