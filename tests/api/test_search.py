"""``?search=``: DjangoQL with JSON paths, typed values, text fallback, and 400s with positions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from auditlog import search
from auditlog.models import Event, EventAction
from directory.models import User

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"
USERS = "/api/v3/core/users/"


def make(
    action: str = EventAction.LOGIN,
    *,
    app: str = "tests",
    user: dict | None = None,
    brand: dict | None = None,
    client_ip: str | None = None,
    **context: Any,
) -> Event:
    event = Event(action=action, app=app, user=user or {}, context=context, client_ip=client_ip)
    if brand is not None:
        event.brand = brand
    event.save()
    return event


@pytest.fixture
def client(api_as, admin_user):
    return api_as(admin_user)


def found(client, query: str, url: str = EVENTS) -> set[str]:
    response = client.get(url, {"search": query, "page_size": 1000})
    assert response.status_code == 200, response.json()
    return {str(row["pk"]) for row in response.json()["results"]}


def test_json_paths_of_any_depth(client) -> None:
    de = make(geo={"country": "DE", "city": "Berlin"}, deep={"a": {"b": {"c": "x"}}})
    make(geo={"country": "FR"})
    assert found(client, 'context.geo.country = "DE"') == {str(de.pk)}
    assert found(client, 'context.deep.a.b.c = "x"') == {str(de.pk)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('context.word = "alpha"', {"alpha"}),
        ('context.word != "alpha"', {"beta", "gamma", None}),
        ('context.word ~ "ph"', {"alpha"}),
        ('context.word !~ "ph"', {"beta", "gamma", None}),
        ('context.word startswith "gam"', {"gamma"}),
        ('context.word not startswith "gam"', {"alpha", "beta", None}),
        ('context.word endswith "ta"', {"beta"}),
        ('context.word not endswith "ta"', {"alpha", "gamma", None}),
        ('context.word in ("alpha", "beta")', {"alpha", "beta"}),
        ('context.word not in ("alpha", "beta")', {"gamma", None}),
        ('context.word > "beta"', {"gamma"}),
        ('context.word >= "beta"', {"beta", "gamma"}),
        ('context.word < "beta"', {"alpha"}),
        ('context.word <= "beta"', {"alpha", "beta"}),
        ("context.word = None", {None}),
        ("context.word != None", {"alpha", "beta", "gamma"}),
    ],
)
def test_every_operator_on_a_json_string(client, query: str, expected: set) -> None:
    by_word = {word: make(word=word) for word in ("alpha", "beta", "gamma")}
    by_word[None] = make(other=1)
    got = found(client, f'action = "login" and ({query})')
    assert got == {str(by_word[word].pk) for word in expected}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ('action = "logout"', {"b"}),
        ('action != "login"', {"b", "c"}),
        ('action ~ "log"', {"a", "b"}),
        ('action startswith "login"', {"a"}),
        ('action endswith "out"', {"b"}),
        ('action in ("login", "logout")', {"a", "b"}),
        ('action not in ("login", "logout")', {"c"}),
        ('app = "alpha-app"', {"a"}),
        ('app startswith "N"', {"c"}),
        ('client_ip = "10.0.0.1"', {"a"}),
        ('client_ip != "10.0.0.1"', {"b", "c"}),
        ('client_ip ~ "10.0"', {"a", "b"}),
    ],
)
def test_operators_on_columns(client, query: str, words: set) -> None:
    made = {
        "a": make(EventAction.LOGIN, app="alpha-app", client_ip="10.0.0.1", w="a"),
        "b": make(EventAction.LOGOUT, app="beta-app", client_ip="10.0.0.2", w="b"),
        "c": make(EventAction.SECRET_VIEW, app="Nebula", w="c"),
    }
    got = found(client, f'({query}) and context.w ~ ""')
    assert got == {str(made[word].pk) for word in words}


def test_json_numbers_and_booleans_compare_by_type(client, db) -> None:
    target = User.objects.create_user(
        "typed", attributes={"enabled": True, "count": 3, "speed": 1.5}
    )
    User.objects.create_user(
        "stringy", attributes={"enabled": "True", "count": "3", "speed": "1.5"}
    )
    User.objects.create_user("other", attributes={"enabled": False, "count": 4, "speed": 2.7})
    for query in [
        "attributes.enabled = True",
        "attributes.count = 3",
        "attributes.count = 3.0",
        "attributes.speed = 1.5",
        "attributes.speed in (1.5, 2.5)",
        "attributes.speed >= 1.0 and attributes.speed <= 2.0",
    ]:
        assert found(client, query, USERS) == {str(target.pk)}, query


def test_booleans_and_none_in_event_context(client) -> None:
    yes = make(flag=True)
    no = make(flag=False)
    assert found(client, "context.flag = True") == {str(yes.pk)}
    assert found(client, "context.flag = False") == {str(no.pk)}


def test_created_compares_with_dates_and_timestamps(client) -> None:
    old = make(w="old")
    Event.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=40))
    new = make(w="new")
    cutoff = (timezone.now() - timedelta(days=20)).date().isoformat()
    assert found(client, f'created > "{cutoff}" and context.w ~ ""') == {str(new.pk)}
    assert found(client, f'created < "{cutoff}" and context.w ~ ""') == {str(old.pk)}
    today = timezone.now().date().isoformat()
    assert str(new.pk) in found(client, f'created = "{today}"')
    assert str(old.pk) not in found(client, f'created = "{today}"')
    stamp = (timezone.now() - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert found(client, f'created >= "{stamp}" and context.w ~ ""') == {str(new.pk)}


def test_square_brackets_and_parentheses_make_lists(client) -> None:
    ana = make(user={"username": "ana", "pk": 1, "email": ""})
    admin = make(user={"username": "akadmin", "pk": 2, "email": ""})
    make(user={"username": "ben", "pk": 3, "email": ""})
    expected = {str(ana.pk), str(admin.pk)}
    assert found(client, 'user.username in ["ana", "akadmin"]') == expected
    assert found(client, 'user.username in ("ana", "akadmin")') == expected


def test_a_bracket_inside_a_string_stays_a_bracket(client) -> None:
    hit = make(note="[x]")
    assert found(client, 'context.note = "[x]"') == {str(hit.pk)}


def test_the_seed_documentation_examples_work(client) -> None:
    login = make(
        EventAction.LOGIN,
        app="Nimbus",
        client_ip="10.0.0.1",
        geo={"country": "DE"},
        user={"username": "ana", "pk": 9, "email": ""},
    )
    app = make(
        EventAction.AUTHORIZE_APPLICATION, authorized_application={"name": "My app", "pk": "ab"}
    )
    branded = make(
        brand={"name": "my brand", "pk": "cd", "app": "directory", "model_name": "brand"}
    )
    assert str(login.pk) in found(client, 'app startswith "N"')
    assert str(login.pk) in found(client, 'action = "login"')
    assert found(client, 'context.authorized_application.name = "My app"') == {str(app.pk)}
    assert found(client, 'context.geo.country = "Germany"') == {str(login.pk)}
    assert found(client, 'context.geo.country = "DE"') == {str(login.pk)}
    assert found(client, 'client_ip = "10.0.0.1"') == {str(login.pk)}
    assert found(client, 'brand.name = "my brand"') == {str(branded.pk)}
    assert found(client, 'user.username in ["ana", "akadmin"]') == {str(login.pk)}


def test_country_and_continent_names_are_translated(client) -> None:
    se = make(geo={"country": "SE", "continent": "EU"})
    us = make(geo={"country": "US", "continent": "NA"})
    assert found(client, 'context.geo.country in ("Sweden", "United States")') == {
        str(se.pk),
        str(us.pk),
    }
    assert found(client, 'context.geo.continent = "Europe"') == {str(se.pk)}
    assert found(client, 'context.geo.country != "sweden"') >= {str(us.pk)}


def test_an_unknown_country_name_is_a_helpful_error(client) -> None:
    response = client.get(EVENTS, {"search": 'context.geo.country = "Atlantis"'})
    assert response.status_code == 400
    assert "geo.country holds ISO codes" in response.json()["detail"]


def test_event_uuid_lists_select_events(client) -> None:
    one, two = make(), make()
    make()
    assert found(client, f'event_uuid = "{one.pk}"') == {str(one.pk)}
    assert found(client, f'event_uuid in ("{one.pk}", "{two.pk}")') == {str(one.pk), str(two.pk)}
    assert client.get(EVENTS, {"search": 'event_uuid = "nope"'}).status_code == 400


def test_plain_text_falls_back_to_a_text_match(client) -> None:
    hit = make(message="the quick brown fox")
    make(message="lazy dog")
    assert found(client, "quick fox") == {str(hit.pk)}
    assert found(client, "zebra") == set()


def test_plain_text_on_users_matches_usernames(client, db) -> None:
    alice = User.objects.create_user("alice")
    User.objects.create_user("bob")
    assert found(client, "alice", USERS) == {str(alice.pk)}


@pytest.mark.parametrize(
    ("query", "column", "fragment"),
    [
        ("action =", 9, "Unexpected end of input"),
        ('action = "login" and', 21, "Unexpected end of input"),
        ('action = = "x"', 10, "Syntax error"),
        ('action = "login" & app = "x"', 18, "Illegal character"),
        ('foo = "x"', 1, "Unknown field: foo"),
        ('action = "login" and context.geo.lat = "x" and bar.baz = 1', 48, "Unknown field: bar"),
        ('client_ip = "not-an-ip"', 1, "is not an IP address"),
        ('created > "yesterday"', 1, "created"),
    ],
)
def test_a_malformed_query_is_a_400_with_its_position(
    client, query: str, column: int, fragment: str
) -> None:
    response = client.get(EVENTS, {"search": query})
    assert response.status_code == 400
    body = response.json()
    assert fragment in body["detail"]
    assert body["search"]["column"] == column
    assert body["search"]["line"] == 1
    assert body["search"]["query"] == query
    assert f"column {column}" in body["detail"]


def test_nul_characters_are_removed_from_the_search(client) -> None:
    hit = make(w="x")
    assert found(client, 'context.w = "x"\x00') == {str(hit.pk)}


def test_the_parser_is_built_once_per_process(client, monkeypatch) -> None:
    built = []
    original = search.DjangoQLParser.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(search.DjangoQLParser, "__init__", counting_init)
    search._parser.cache_clear()
    for index in range(10):
        assert client.get(EVENTS, {"search": f"context.n = {index}"}).status_code == 200
    assert len(built) == 1


def test_autocomplete_carries_the_introspection_with_json_keys(client) -> None:
    make(ticket={"number": 5}, geo={"country": "DE"})
    body = client.get(EVENTS).json()
    autocomplete = body["autocomplete"]
    assert autocomplete["current_model"] == "auditlog.event"
    models = autocomplete["models"]
    event = models["auditlog.event"]
    assert event["action"]["type"] == "str"
    assert "login" in event["action"]["options"]
    assert event["created"]["type"] == "datetime"
    assert event["context"] == {
        "type": "relation",
        "nullable": False,
        "options": None,
        "relation": "auditlog.event_context",
    }
    assert models["auditlog.event_context"]["geo"]["relation"] == "auditlog.event_context_geo"
    assert models["auditlog.event_context_geo"]["country"]["type"] == "str"
    assert models["auditlog.event_context"]["ticket"]["relation"] == "auditlog.event_context_ticket"
    assert models["auditlog.event_context_ticket"]["number"]["type"] == "int"
    assert models["auditlog.event_context_http_request_args"] == {}
    assert models["auditlog.event_user"]["username"]["type"] == "str"
    assert autocomplete["suggestions_api_url"] == "/api/v3/events/events/suggestions/"


def test_value_suggestions_come_from_recent_events(client) -> None:
    make(geo={"country": "DE"}, http_request={"method": "POST"})
    make(geo={"country": "DK"})
    make(geo={"country": "FR"})
    body = client.get(
        f"{EVENTS}suggestions/", {"field": "auditlog.event_context_geo.country", "search": "D"}
    ).json()
    assert body == {"items": ["DE", "DK"], "page": 1, "has_next": False}
    methods = client.get(
        f"{EVENTS}suggestions/", {"field": "auditlog.event_context_http_request.method"}
    ).json()
    assert methods["items"] == ["POST"]
    actions = client.get(
        f"{EVENTS}suggestions/", {"field": "auditlog.event.action", "search": "logi"}
    ).json()
    assert set(actions["items"]) == {"login", "login_failed"}
    unknown = client.get(f"{EVENTS}suggestions/", {"field": "auditlog.nothing.x"})
    assert unknown.status_code == 400


def test_the_suggestions_need_the_view_permission(api_as, nobody) -> None:
    response = api_as(nobody).get(f"{EVENTS}suggestions/", {"field": "auditlog.event.action"})
    assert response.status_code == 403


def test_search_and_filters_combine(client) -> None:
    hit = make(EventAction.LOGIN, w="a", client_ip="10.0.0.1")
    make(EventAction.LOGIN, w="a", client_ip="10.0.0.2")
    response = client.get(EVENTS, {"search": 'context.w = "a"', "client_ip": "10.0.0.1"})
    assert [row["pk"] for row in response.json()["results"]] == [str(hit.pk)]


def test_compile_query_is_usable_outside_the_api() -> None:
    hit = make(w="z")
    q = search.compile_query('context.w = "z"', search.EventSearchSchema)
    assert list(Event.objects.filter(q).values_list("pk", flat=True)) == [hit.pk]
    with pytest.raises(search.SearchError):
        search.compile_query("context.w =", search.EventSearchSchema)


def test_uuid_strings_work_with_or_without_dashes(client) -> None:
    event = make()
    assert found(client, f'event_uuid = "{event.pk.hex}"') == {str(event.pk)}
    assert found(client, f'event_uuid = "{uuid.UUID(str(event.pk))}"') == {str(event.pk)}
