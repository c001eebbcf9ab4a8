"""Plain-text search finds accented names, in any case, on SQLite and on PostgreSQL.

SQLite keeps a JSON document as the text Django wrote, with ``\\u00e9`` for "é", and its LIKE
folds the case of ASCII letters only; PostgreSQL keeps jsonb. The same words must find the
same events on both.
"""

from __future__ import annotations

import pytest
from django.test import Client

from auditlog.models import Event, EventAction
from directory.models import User

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"
USERS = "/api/v3/core/users/"


@pytest.fixture
def events() -> dict[str, Event]:
    def make(username: str, **context: str) -> Event:
        event = Event(
            action=EventAction.LOGIN,
            app="tests",
            user={"pk": 1, "username": username},
            context=context,
        )
        event.save()
        return event

    return {
        "chloe": make("chloé.larsen", city="Zürich"),
        "chlo_plain": make("chlotilde"),
        "zoe": make("zoë", note='said "Ǆemal" \\ ok'),
        "other": make("bob"),
    }


def found(client, query: str, url: str = EVENTS) -> set[str]:
    response = client.get(url, {"search": query, "page_size": 1000})
    assert response.status_code == 200, response.json()
    return {str(row["pk"]) for row in response.json()["results"]}


@pytest.mark.parametrize("word", ["chloé", "Chloé", "CHLOÉ", "chloé.larsen", "É.LARSEN"])
def test_an_accented_word_finds_the_event_in_any_case(api_as, admin_user, events, word) -> None:
    assert found(api_as(admin_user), word) == {str(events["chloe"].pk)}


def test_accents_in_context_values_and_several_terms(api_as, admin_user, events) -> None:
    client = api_as(admin_user)
    assert found(client, "zürich") == {str(events["chloe"].pk)}
    assert found(client, "ZÜRICH chloé") == {str(events["chloe"].pk)}
    assert found(client, "zürich zoë") == set()  # every term must match
    assert found(client, "ZOË") == {str(events["zoe"].pk)}
    # Characters JSON escapes ("quotes", backslashes) and a letter with three cases.
    assert found(client, "ǆemal") == {str(events["zoe"].pk)}
    assert found(client, "ǅEMAL") == {str(events["zoe"].pk)}
    assert found(client, "\\") == {str(events["zoe"].pk)}


def test_the_ascii_prefix_still_finds_both(api_as, admin_user, events) -> None:
    assert found(api_as(admin_user), "chlo") == {
        str(events["chloe"].pk),
        str(events["chlo_plain"].pk),
    }
    assert found(api_as(admin_user), "chloe") == set()  # an accent is not ignored


def test_the_event_log_page_finds_accented_names(admin_user, events) -> None:
    client = Client()
    client.force_login(admin_user)
    html = client.get("/events/", {"search": "Chloé"}).content.decode()
    assert html.count('class="event-row"') == 1
    assert "chloé.larsen" in html
    zoe = client.get("/events/", {"search": "zoë"}).content.decode()
    assert zoe.count('class="event-row"') == 1


def test_users_are_found_by_accented_names_and_attributes(api_as, admin_user) -> None:
    chloe = User.objects.create_user("chloé.larsen", attributes={"city": "Zürich"})
    User.objects.create_user("chloe.other")
    client = api_as(admin_user)
    assert found(client, "CHLOÉ", USERS) == {str(chloe.pk)}
    assert found(client, "zürich", USERS) == {str(chloe.pk)}
