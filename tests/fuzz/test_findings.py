"""What fuzzing the API found, one regression test each: every answer is a documented 4xx with
a message (never a 500), and every answer matches the schema."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from auditlog.models import Event
from directory.models import Group, User
from exports.models import DataExport
from notifications.models import NotificationRule, NotificationTransport
from tests.fuzz.conftest import generated_schema

pytestmark = pytest.mark.django_db

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def admin_api(api_as, admin_user) -> Any:
    return api_as(admin_user)


# --- The schema documents the refusals ------------------------------------------------------


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = generated_schema()["paths"]
    return [
        (method, path, operation)
        for path, methods in paths.items()
        for method, operation in methods.items()
        if method in HTTP_METHODS
    ]


def test_every_operation_documents_the_refusals_it_can_answer_with() -> None:
    for method, path, operation in operations():
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert {"403", "503"} <= set(responses), where  # a user without rights: 403
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        if "path" in locations:
            assert "404" in responses, where
        if "query" in locations or "requestBody" in operation:
            assert "400" in responses, where


def test_a_page_before_the_first_is_a_documented_404(admin_api) -> None:
    response = admin_api.get("/api/v3/events/events/", {"page": 0})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}
    responses = generated_schema()["paths"]["/api/v3/events/events/"]["get"]["responses"]
    assert "404" in responses


def test_a_rule_without_a_destination_group_matches_its_schema(admin_api) -> None:
    rule = NotificationRule.objects.create(name="nobody in particular", match='action = "login"')
    body = admin_api.get(f"/api/v3/events/rules/{rule.pk}/").json()
    assert body["destination_group"] is None and body["destination_group_obj"] is None
    schema = generated_schema()["components"]["schemas"]["NotificationRule"]
    assert schema["properties"]["destination_group_obj"].get("nullable") is True


def test_a_patched_group_still_shows_parent_name(admin_api) -> None:
    group = Group.objects.create(name="orphans")
    response = admin_api.patch(f"/api/v3/core/groups/{group.pk}/", {"name": "still orphans"})
    assert response.status_code == 200
    assert response.json()["parent_name"] is None
    parent = Group.objects.create(name="parents")
    response = admin_api.patch(f"/api/v3/core/groups/{group.pk}/", {"parent": str(parent.pk)})
    assert response.json()["parent_name"] == "parents"


# --- Answers under /api/ are JSON -----------------------------------------------------------


def test_an_api_url_that_matches_no_route_is_a_json_404(admin_api) -> None:
    for url in ("/api/v3/core/users/0.5/", "/api/v3/nothing-here/"):
        response = admin_api.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}


def test_a_page_that_does_not_exist_is_still_the_web_admins_page(admin_user) -> None:
    browser = Client()
    browser.force_login(admin_user)
    response = browser.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unexpected_error_under_the_api_is_a_json_500(admin_user, make_token, monkeypatch):
    from auditlog.api.views import EventViewSet

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(EventViewSet, "list", broken)
    client = Client(raise_request_exception=False)
    response = client.get(
        "/api/v3/events/events/", HTTP_AUTHORIZATION=f"Bearer {make_token(admin_user)}"
    )
    assert response.status_code == 500
    assert response.json() == {"detail": "A server error occurred."}
    assert "a bug" not in response.content.decode()


# --- Numbers the database cannot hold -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "name"),
    [
        ("/api/v3/events/deliveries/", {"user": "3.402823466e+38"}, "user"),
        ("/api/v3/events/notifications/", {"user": "99999999999999999999999"}, "user"),
        ("/api/v3/core/groups/", {"members_by_pk": "198216121177144148623360"}, "members_by_pk"),
        ("/api/v3/core/groups/", {"members_by_pk": "¹"}, "members_by_pk"),
    ],
)
def test_an_id_too_large_for_the_database_is_a_400(admin_api, url, params, name) -> None:
    response = admin_api.get(url, params)
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_a_model_pk_in_unusual_digits_is_just_a_search_term(admin_api) -> None:
    for value in ("¹", "99999999999999999999999999", "-5"):
        response = admin_api.get("/api/v3/events/events/", {"context_model_pk": value})
        assert response.status_code == 200, (value, response.content)
        assert response.json()["results"] == []


def test_a_time_offset_postgresql_refuses_is_compared_in_utc(admin_api) -> None:
    response = admin_api.get(
        "/api/v3/events/notifications/", {"created__gte": "0134-04-12T14:53:51+23:45"}
    )
    assert response.status_code == 200, response.content
    response = admin_api.get(
        "/api/v3/events/notifications/", {"created__lte": "0001-01-01T00:00:00+05:00"}
    )
    assert response.status_code == 400
    assert response.json() == {"created__lte": ["That date and time is out of range."]}


# --- NUL characters (PostgreSQL cannot store or compare them) -------------------------------


@pytest.mark.parametrize(
    "url", ["/api/v3/events/rules/", "/api/v3/events/transports/", "/api/v3/reports/exports/"]
)
def test_a_nul_in_a_text_search_is_a_400_naming_search(admin_api, url) -> None:
    response = admin_api.get(url, {"search": "\x00ab"})
    assert response.status_code == 400
    assert response.json() == {"search": ["Null characters are not allowed."]}


def test_a_nul_in_json_attributes_is_a_400_and_nothing_is_stored(admin_api, nobody) -> None:
    response = admin_api.patch(
        f"/api/v3/core/users/{nobody.pk}/", {"attributes": {"a\x00": "b"}}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"attributes": ["Null characters are not allowed."]}
    response = admin_api.post(
        "/api/v3/core/groups/", {"name": "g", "attributes": {"x": ["\x00"]}}, format="json"
    )
    assert response.status_code == 400
    assert not Group.objects.filter(name="g").exists()
    nobody.refresh_from_db()
    assert nobody.attributes == {}


def test_an_ingested_event_still_has_its_nul_characters_removed(admin_api) -> None:
    response = admin_api.post(
        "/api/v3/events/events/",
        {"action": "custom_nul", "app": "tests", "context": {"a\x00b": "foo \x00bar"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert Event.objects.get(pk=response.json()["pk"]).context == {"ab": "foo bar"}


def test_a_nul_in_the_top_applications_action_is_a_400(admin_api) -> None:
    response = admin_api.get("/api/v3/events/events/top_per_user/", {"action": "lo\x00gin"})
    assert response.status_code == 400
    assert response.json() == {"action": ["Null characters are not allowed."]}


def test_a_nul_in_a_token_identifier_is_a_404(admin_api) -> None:
    for url in ("/api/v3/core/tokens/a%00b/", "/api/v3/core/tokens/a%00b/view_key/"):
        response = admin_api.get(url)
        assert response.status_code == 404
        assert "detail" in response.json()


def test_a_transport_search_without_nul_still_searches(admin_api) -> None:
    NotificationTransport.objects.create(name="pager")
    response = admin_api.get("/api/v3/events/transports/", {"search": "pag"})
    assert [item["name"] for item in response.json()["results"]] == ["pager"]


def test_a_nul_in_an_export_request_is_a_400_and_nothing_is_stored(admin_api) -> None:
    response = admin_api.post("/api/v3/events/events/export/?anything=a%00b")
    assert response.status_code == 400
    assert response.json() == {"anything": ["Null characters are not allowed."]}
    assert not DataExport.objects.exists()


# --- The schema describes the answers, and what it calls invalid is refused ------------------


@pytest.fixture
def documented(admin_user, make_token) -> Any:
    """Call an operation in-process and check the answer against the served schema."""
    import schemathesis
    from django.core.handlers.wsgi import WSGIHandler
    from schemathesis.specs.openapi import checks

    schema = schemathesis.openapi.from_dict(generated_schema())
    headers = {"Authorization": f"Bearer {make_token(admin_user)}", "Accept-Encoding": "identity"}

    def call(method: str, path: str, **parts: Any) -> Any:
        case = schema[path][method].Case(**parts)
        response = case.call(app=WSGIHandler(), headers=headers)
        case.validate_response(response, checks=[checks.response_schema_conformance])
        return response

    return call


@pytest.mark.django_db(transaction=True)
def test_a_username_in_any_script_matches_the_documented_shape(documented) -> None:
    chloe = User.objects.create_user("chloé.larsen", "chloe@bücher.example")
    group = Group.objects.create(name="nordic")
    group.users.add(chloe)
    user = documented("GET", "/api/v3/core/users/{pk}/", path_parameters={"pk": chloe.pk})
    assert user.status_code == 200, (user.status_code, user.text)
    assert user.json()["username"] == "chloé.larsen"
    listed = documented("GET", "/api/v3/core/groups/{pk}/", path_parameters={"pk": str(group.pk)})
    assert [item["username"] for item in listed.json()["users_obj"]] == ["chloé.larsen"]


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v3/core/groups/", {"name": "g", "parent": ""}, "parent"),
        ("/api/v3/core/groups/", {"name": "g", "is_superuser": 1}, "is_superuser"),
        ("/api/v3/core/groups/", {"name": 5}, "name"),
        (
            "/api/v3/events/transports/",
            {"name": "t", "email_subject_prefix": 7},
            "email_subject_prefix",
        ),
        ("/api/v3/core/users/", {"username": "u", "is_active": "yes"}, "is_active"),
        ("/api/v3/events/events/", {"action": "login", "app": 3}, "app"),
        ("/api/v3/core/users/", {"username": "u", "groups": {}}, "groups"),
    ],
)
def test_a_body_the_schema_calls_invalid_is_a_400_naming_the_field(
    admin_api, url, body, field
) -> None:
    response = admin_api.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    ("url", "params", "name"),
    [
        ("/api/v3/core/users/", {"uuid": ""}, "uuid"),
        ("/api/v3/core/users/", {"is_active": "maybe"}, "is_active"),
        ("/api/v3/core/users/", {"include_groups": "-346"}, "include_groups"),
        ("/api/v3/core/groups/", {"is_superuser": ""}, "is_superuser"),
        ("/api/v3/core/groups/", {"include_users": "no way"}, "include_users"),
        ("/api/v3/events/transports/", {"send_once": "+"}, "send_once"),
        ("/api/v3/events/notifications/", {"event": ""}, "event"),
        ("/api/v3/events/events/", {"actions": ""}, "actions"),
    ],
)
def test_a_query_value_the_schema_calls_invalid_is_a_400_naming_it(
    admin_api, url, params, name
) -> None:
    response = admin_api.get(url, params)
    assert response.status_code == 400, response.content
    assert name in response.json()


def test_valid_flags_and_text_filters_still_work(admin_api) -> None:
    for params in ({"is_active": "true"}, {"is_active": "0"}, {"username": ""}, {}):
        assert admin_api.get("/api/v3/core/users/", params).status_code == 200, params
    response = admin_api.get("/api/v3/core/groups/", {"include_users": "false"})
    assert response.status_code == 200


def test_an_empty_export_format_is_a_400_not_the_default(admin_api) -> None:
    response = admin_api.post("/api/v3/events/events/export/?format=")
    assert response.status_code == 400
    assert "format" in response.json()
    assert not DataExport.objects.exists()


def test_an_empty_client_ip_is_documented_and_means_none(admin_api) -> None:
    schema = generated_schema()["components"]["schemas"]["EventRequest"]
    assert "minLength" not in schema["properties"]["client_ip"]
    response = admin_api.post(
        "/api/v3/events/events/", {"action": "login", "app": "t", "client_ip": ""}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["client_ip"] is None


@pytest.mark.parametrize(
    ("url", "query", "name"),
    [
        ("/api/v3/events/events/", "page_size=5&page_size=6", "page_size"),
        ("/api/v3/events/events/", "page=1&page=2", "page"),
        ("/api/v3/events/events/volume/", "history_days=3&history_days=4", "history_days"),
        ("/api/v3/events/chain/checkpoints/", "kind=", "kind"),
    ],
)
def test_a_single_valued_parameter_given_twice_or_empty_is_a_400(admin_api, url, query, name):
    response = admin_api.get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize(
    ("url", "query", "name"),
    [
        ("/api/v3/events/deliveries/", "user=1&user=2", "user"),
        ("/api/v3/events/notifications/", "seen=true&seen=false", "seen"),
        ("/api/v3/core/users/", "username=a&username=b", "username"),
        ("/api/v3/events/events/", "action=login&action=logout", "action"),
        ("/api/v3/core/users/", "include_groups=true&include_groups=false", "include_groups"),
    ],
)
def test_a_filter_documented_as_one_value_given_twice_is_a_400(admin_api, url, query, name):
    response = admin_api.get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()[name] == ["Give this parameter once."]


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("/api/v3/core/users/", "type=internal&type=service_account"),
        ("/api/v3/events/events/", "actions=login&actions=logout"),
        ("/api/v3/core/groups/", "members_by_username={admin}&members_by_username={nobody}"),
    ],
)
def test_a_repeatable_filter_still_takes_several_values(admin_api, nobody, url, query) -> None:
    query = query.format(admin="admin", nobody=nobody.username)
    response = admin_api.get(f"{url}?{query}")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("value", ["0.0", "1e0", "2.5", " "])
def test_an_integer_filter_takes_only_whole_numbers(admin_api, value) -> None:
    response = admin_api.get("/api/v3/events/deliveries/", {"user": value})
    assert response.status_code == 400, (value, response.content)
    assert "user" in response.json()
    for whole in ("0", "-3", "17"):
        assert admin_api.get("/api/v3/events/deliveries/", {"user": whole}).status_code == 200


@pytest.mark.parametrize("name", ["page", "page_size"])
def test_an_empty_page_or_page_size_is_a_400_not_the_default(admin_api, name) -> None:
    # What the fuzzer's empty object for these integers becomes on the wire: `?page=`.
    for url in ("/api/v3/events/transports/", "/api/v3/events/rules/", "/api/v3/reports/exports/"):
        response = admin_api.get(f"{url}?{name}=")
        assert response.status_code == 400, (url, response.content)
        assert name in response.json()
    assert admin_api.get("/api/v3/events/rules/").status_code == 200


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v3/core/users/", "include_groups"),
        ("/api/v3/core/users/", "include_roles"),
        ("/api/v3/core/groups/", "include_users"),
        ("/api/v3/core/groups/", "include_children"),
    ],
)
def test_an_invalid_include_flag_is_a_400_even_when_nothing_is_listed(admin_api, url, name):
    # The serializer reads the flag only for the objects it shows: an empty page showed none.
    response = admin_api.get(url, {"search": "no such thing at all", name: "g\n?"})
    assert response.status_code == 400, response.content
    assert response.json() == {name: ["Must be true or false."]}
    assert admin_api.get(url, {"search": "no such thing", name: "false"}).status_code == 200


def test_an_invalid_include_flag_on_one_user_is_a_400(admin_api, nobody) -> None:
    response = admin_api.get(f"/api/v3/core/users/{nobody.pk}/", {"include_groups": "yes"})
    assert response.status_code == 400
    assert "include_groups" in response.json()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"action": "login", "app": 3}, "app"),
        ({"action": "login", "app": 2.5}, "app"),
        ({"action": "login", "app": "a", "client_ip": 2130706433}, "client_ip"),
    ],
)
def test_a_batch_event_of_the_wrong_json_type_is_a_400_and_nothing_is_stored(
    admin_api, item, field
) -> None:
    # The single-event endpoint already refused these; the batch read the number as text.
    good = {"action": "login", "app": "fine"}
    response = admin_api.post("/api/v3/events/events/bulk/", [good, item], format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {"1": {field: ["Not a valid string."]}}
    assert not Event.objects.filter(app__in=("fine", "3", "2.5")).exists()
    response = admin_api.post("/api/v3/events/events/bulk/", [good], format="json")
    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["page", "page_size"])
@pytest.mark.parametrize("value", [{}, {"a": 1}, {"a": 1, "b": "x"}])
def test_an_object_for_page_reaches_the_api_as_that_parameter_and_is_refused(
    documented, name, value
) -> None:
    # How the fuzzer puts an object for an integer query parameter on the wire: `{}` as
    # `page=`, any other under the same key (its keys as the values), never as other keys; so
    # the API sees an invalid value and must refuse it, and neither the schema nor the harness
    # needs a change. (An object whose keys are whole numbers, `{"5": "x"}` as `page=5`, is a
    # valid request on the wire, and schemathesis's negative-data check already discounts it.)
    response = documented("GET", "/api/v3/events/rules/", query={name: value})
    if name == "page" and value:  # DRF's (and authentik's) answer to a page that is not a number
        assert response.status_code == 404, (value, response.text)
        assert response.json() == {"detail": "Invalid page."}
    else:
        assert response.status_code == 400, (value, response.text)
        assert name in response.json()


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v3/events/events/volume/", "history_days"),
        ("/api/v3/events/events/top_per_user/", "top_n"),
        ("/api/v3/events/chain/checkpoints/", "since"),
        ("/api/v3/events/chain/verify/", "from_sequence"),
        ("/api/v3/events/chain/verify/", "to_sequence"),
        ("/api/v3/events/events/", "page_size"),
    ],
)
def test_a_hand_read_integer_parameter_is_held_to_its_type(admin_api, url, name) -> None:
    # Found by the long fuzz run: an empty value meant the default, and int() took the rest.
    for query in (
        f"{name}=",
        f"{name}=1&{name}=2",
        f"{name}=1_0",
        f"{name}=%205",
        f"{name}=%EF%BC%95",
    ):
        response = admin_api.get(f"{url}?{query}")
        assert response.status_code == 400, (query, response.content)
        assert name in response.json(), query
    assert admin_api.get(f"{url}?{name}=5").status_code == 200


@pytest.mark.parametrize(
    ("url", "query", "name"),
    [
        ("/api/v3/events/events/top_per_user/", "action=login&action=logout", "action"),
        ("/api/v3/events/chain/checkpoints/", "kind=prune&kind=checkpoint", "kind"),
    ],
)
def test_a_hand_read_text_parameter_given_twice_is_a_400(admin_api, url, query, name) -> None:
    response = admin_api.get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert response.json() == {name: ["Give this parameter once."]}


@pytest.mark.parametrize(
    ("field", "value"),
    [("verify_tls", 0), ("enabled", "true"), ("page_size", "5"), ("name", 7)],
)
def test_a_source_body_of_the_wrong_json_type_is_a_400(admin_api, field, value) -> None:
    # Found by the long fuzz run: `verify_tls: 0` created a source that skips TLS checks.
    from sources.models import AuthentikSource

    body = {"name": "s", "url": "https://auth.example.com", "token": "t" * 20, field: value}
    response = admin_api.post("/api/v3/sources/authentik/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not AuthentikSource.objects.exists()


def test_a_text_longer_than_documented_is_a_400_even_padded_with_spaces(admin_api) -> None:
    # Found by the fuzz rerun: DRF trims before it measures, the schema measures what is sent.
    from sources.models import AuthentikSource

    body = {"name": "s", "url": "https://auth.example.com", "token": "t" + " " * 4096}
    response = admin_api.post("/api/v3/sources/authentik/", body, format="json")
    assert response.status_code == 400, response.content
    assert "token" in response.json()
    assert not AuthentikSource.objects.exists()
