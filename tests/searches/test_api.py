"""``/api/v3/events/saved_searches/`` and the saved-search service: who sees, changes, shares
and pins what, and a search that no longer parses says so instead of matching nothing."""

from __future__ import annotations

from typing import Any

import pytest

from auditlog.models import Event, EventAction
from auditlog.search import EventSearchSchema, compile_query
from directory.models import User
from searches.models import SavedSearch
from searches.services import SavedSearchError, resolve_saved_search, save_search
from tests.conftest import grant

URL = "/api/v3/events/saved_searches/"
pytestmark = pytest.mark.django_db


def test_a_reader_saves_lists_renames_pins_and_deletes_their_search(
    auditor: User, api_as: Any
) -> None:
    client = api_as(auditor)
    created = client.post(
        URL,
        {
            "name": "Failed logins",
            "query": 'action = "login_failed"',
            "filters": {"username": "ana"},
            "ordering": "-created",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["owner"] == "auditor" and body["problem"] is None and body["pinned"] is False
    assert body["link"] == f"/searches/{body['pk']}/"
    detail = f"{URL}{body['pk']}/"
    assert client.patch(detail, {"name": "Failures", "pinned": True}, format="json").json()[
        "pinned"
    ]
    listed = client.get(URL).json()["results"]
    assert [(row["name"], row["pinned"]) for row in listed] == [("Failures", True)]
    assert client.delete(detail).status_code == 204
    assert not SavedSearch.objects.exists()


def test_bad_input_is_a_400_that_names_the_field(auditor: User, api_as: Any) -> None:
    client = api_as(auditor)
    bad_query = client.post(URL, {"name": "x", "query": "nosuchfield = 1"}, format="json")
    assert bad_query.status_code == 400 and "nosuchfield" in str(bad_query.json()["query"])
    no_name = client.post(URL, {"name": " ", "query": ""}, format="json")
    assert no_name.status_code == 400 and "name" in no_name.json()
    bad_filter = client.post(URL, {"name": "x", "filters": {"client_ip": "nope"}}, format="json")
    assert bad_filter.status_code == 400 and "client_ip" in str(bad_filter.json())
    client.post(URL, {"name": "dup"}, format="json")
    duplicate = client.post(URL, {"name": "dup"}, format="json")
    assert duplicate.status_code == 400 and "already" in str(duplicate.json()["name"])


def test_only_a_publisher_shares_and_others_see_shared_but_not_private_ones(
    auditor: User, admin_user: User, api_as: Any
) -> None:
    refused = api_as(auditor).post(URL, {"name": "all", "shared": True}, format="json")
    assert refused.status_code == 400 and "publish" in str(refused.json()["shared"])
    mine = save_search(user=auditor, name="mine", query="")
    shared = api_as(admin_user).post(
        URL, {"name": "team", "query": 'action = "login"', "shared": True}, format="json"
    )
    assert shared.status_code == 201
    names = [row["name"] for row in api_as(auditor).get(URL).json()["results"]]
    assert names == ["mine", "team"]
    other = User.objects.create_user("other", password="x")
    other = grant(other, "auditlog.view_event")
    assert [row["name"] for row in api_as(other).get(URL).json()["results"]] == ["team"]
    assert api_as(other).get(f"{URL}{mine.pk}/").status_code == 404
    team = f"{URL}{shared.json()['pk']}/"
    # Anyone who sees a shared search may pin it, but not change or delete it.
    assert api_as(other).patch(team, {"pinned": True}, format="json").status_code == 200
    assert api_as(other).patch(team, {"name": "mine now"}, format="json").status_code == 403
    assert api_as(other).delete(team).status_code == 403
    assert SavedSearch.objects.get(name="team").pinned_by.get() == other


def test_users_who_may_not_read_events_are_refused(nobody: User, api_as: Any) -> None:
    assert api_as(nobody).get(URL).status_code == 403
    assert api_as(nobody).post(URL, {"name": "x"}, format="json").status_code == 403
    assert api_as(None).get(URL).status_code in (401, 403)


def test_a_query_that_no_longer_parses_says_so_in_the_api_and_when_resolved(
    auditor: User, api_as: Any
) -> None:
    # A field renamed since the search was saved: stored directly, as an old row would be.
    broken = SavedSearch.objects.create(owner=auditor, name="old", query='renamed_field = "x"')
    row = api_as(auditor).get(f"{URL}{broken.pk}/").json()
    assert row["problem"].startswith('The saved search "old" no longer works')
    assert "renamed_field" in row["problem"]
    with pytest.raises(SavedSearchError, match="no longer works"):
        resolve_saved_search("old", auditor)
    with pytest.raises(SavedSearchError, match="no saved search"):
        resolve_saved_search(9999, auditor)


def test_resolve_turns_query_and_filters_into_one_query_that_matches_the_same_events(
    auditor: User,
) -> None:
    Event(action=EventAction.LOGIN_FAILED, app="t", user={"pk": 1, "username": "ana"}).save()
    Event(action=EventAction.LOGIN_FAILED, app="t", user={"pk": 2, "username": "bob"}).save()
    Event(action=EventAction.LOGIN, app="t", user={"pk": 1, "username": "ana"}).save()
    saved = save_search(
        user=auditor,
        name="ana fails",
        query='app = "t"',
        filters={"actions": ["login_failed"], "username": "ana"},
    )
    query = resolve_saved_search(saved.pk, auditor)
    matched = Event.objects.filter(compile_query(query, EventSearchSchema))
    assert [event.user["username"] for event in matched] == ["ana"]
    assert resolve_saved_search("ana fails", auditor) == query
    text = save_search(user=auditor, name="plain", query="chloé")
    with pytest.raises(SavedSearchError, match="plain-text"):
        resolve_saved_search(text.pk, auditor)


def test_a_rule_created_through_the_api_takes_a_saved_search(admin_user: User, api_as: Any) -> None:
    saved = save_search(user=admin_user, name="fails", filters={"actions": "login_failed"})
    SavedSearch.objects.create(owner=admin_user, name="old", query='renamed = "x"')
    client = api_as(admin_user)
    rules = "/api/v3/events/rules/"
    created = client.post(rules, {"name": "r1", "saved_search": str(saved.pk)}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["match"] == 'action in ("login_failed")'
    broken = client.post(rules, {"name": "r2", "saved_search": "old"}, format="json")
    assert broken.status_code == 400
    assert "no longer works" in broken.json()["saved_search"][0]
