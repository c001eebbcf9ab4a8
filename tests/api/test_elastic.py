"""Elastic's authentik integration, emulated: the same requests (no Accept header, gzip, sorted
query, Bearer token), the same paging and stop rule, against a real HTTP server with a few
thousand events; every document is checked against the contract in
``shared/spec/elastic-integration.md`` §6."""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from auditlog.demo import load_demo_data
from auditlog.models import Event
from directory.models import Group, User
from directory.services import create_api_token

pytestmark = pytest.mark.django_db(transaction=True)

ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_EXECUTIONS = 1000
FILEBEAT_AGENT = "Elastic-Filebeat/8.15.0 (linux; amd64; abc123; 2024-08-01 00:00:00 +0000 UTC)"


def cel_string(number: float) -> str:
    """CEL's string() of a float64 (Go's shortest %g): 2.0 -> "2"."""
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e6 else repr(number)


def poll(
    base_url: str,
    path: str,
    token: str,
    *,
    page_size: int = 1000,
    extra: dict[str, str] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """One interval of the CEL program: returns the published documents (as encode_json would
    write them) and the pagination blocks seen."""
    page: float = 1
    documents: list[str] = []
    paginations: list[dict[str, Any]] = []
    for execution in range(MAX_EXECUTIONS):
        query = {
            **(extra or {}),
            "page": cel_string(page) if execution else "1",
            "page_size": str(page_size),
        }
        url = base_url.rstrip("/") + path + "?" + urlencode(sorted(query.items()))
        request = Request(
            url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": FILEBEAT_AGENT,
                "Accept-Encoding": "gzip",
            },
        )
        assert "Accept" not in request.headers
        with urlopen(request, timeout=30) as response:
            assert response.status == 200
            raw = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
        body = json.loads(raw)
        assert isinstance(body, dict)
        results, pagination = body["results"], body["pagination"]
        assert isinstance(results, list)
        nxt = pagination["next"]
        assert isinstance(nxt, int) and not isinstance(nxt, bool)
        paginations.append(pagination)
        documents.extend(json.dumps(result, sort_keys=True) for result in results)
        want_more = nxt != 0
        if want_more:
            assert results, "an empty page while next != 0 would stop the agent early"
        page = float(nxt) if want_more else 1.0  # state round-trips through protobuf: float64
        if not (want_more and results):
            return documents, paginations
    raise AssertionError("more than max_executions pages")


def check_timestamp(value: Any) -> None:
    assert isinstance(value, str) and ISO_8601.match(value), value
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # a real calendar date


def check_user_shape(user: Any) -> None:
    assert isinstance(user, dict)
    if not user:
        return
    assert isinstance(user["pk"], int) and not isinstance(user["pk"], bool)
    assert isinstance(user["username"], str)
    assert isinstance(user["email"], str)
    if "is_anonymous" in user:
        assert user["is_anonymous"] is True
    if "on_behalf_of" in user:
        check_user_shape(user["on_behalf_of"])


MODEL_REFERENCES = ("model", "binding", "secret", "stage", "token", "authorized_application")


def check_event(document: dict[str, Any]) -> None:
    assert set(document) == {
        "pk",
        "user",
        "action",
        "app",
        "context",
        "client_ip",
        "created",
        "expires",
        "brand",
    }
    uuid.UUID(document["pk"])
    assert isinstance(document["action"], str) and SNAKE.match(document["action"])
    assert isinstance(document["app"], str)
    for key in ("context", "user", "brand"):
        assert isinstance(document[key], dict), key
    ip = document["client_ip"]
    assert ip is None or (ip != "" and ipaddress.ip_address(ip))
    check_timestamp(document["created"])
    check_timestamp(document["expires"])
    check_user_shape(document["user"])
    context = document["context"]
    http = context.get("http_request")
    if http is not None:
        assert isinstance(http, dict)
        for key in ("method", "path", "user_agent"):
            if key in http:
                assert isinstance(http[key], str), key
        assert isinstance(http.get("args", {}), dict)
    if "created" in context:
        assert isinstance(context["created"], bool)
    if "result" in context:
        assert isinstance(context["result"]["passing"], bool)
    for key in MODEL_REFERENCES:
        if key in context:
            reference = context[key]
            assert isinstance(reference, dict), key
            assert isinstance(reference["pk"], str | int), key
    for key in ("message", "username", "email", "password"):
        if key in context:
            assert isinstance(context[key], str), key
    for key in ("geo", "asn"):
        if key in context:
            assert isinstance(context[key], dict)
    if "request" in context and isinstance(context["request"].get("user"), dict):
        check_user_shape(context["request"]["user"])


def check_group(document: dict[str, Any]) -> None:
    uuid.UUID(document["pk"])
    assert isinstance(document["num_pk"], int)
    assert isinstance(document["name"], str)
    assert isinstance(document["is_superuser"], bool)
    assert document["parent"] is None or uuid.UUID(document["parent"])
    assert document["parent_name"] is None or isinstance(document["parent_name"], str)
    assert all(isinstance(pk, int) for pk in document["users"])
    assert document["users_obj"] is None
    assert isinstance(document["attributes"], dict)
    assert all(uuid.UUID(pk) for pk in document["roles"])
    assert all(set(role) == {"pk", "name"} for role in document["roles_obj"])


def check_user(document: dict[str, Any]) -> None:
    assert isinstance(document["pk"], int)
    for key in ("username", "name", "email", "uid", "path"):
        assert isinstance(document[key], str), key
    assert isinstance(document["is_active"], bool)
    assert isinstance(document["is_superuser"], bool)
    if document["last_login"] is not None:
        check_timestamp(document["last_login"])
    assert all(uuid.UUID(pk) for pk in document["groups"])
    assert document["groups_obj"] is None
    assert document.get("avatar") is None or isinstance(document["avatar"], str)
    assert isinstance(document["attributes"], dict)
    assert document["type"] in (
        "internal",
        "external",
        "service_account",
        "internal_service_account",
    )
    uuid.UUID(document["uuid"])


@pytest.fixture
def elastic_server(live_server) -> tuple[str, str]:
    load_demo_data(events=3500, seed=11)
    siem = User.objects.get(username="siem-collector")
    from tests.conftest import grant

    reader = grant(siem, "auditlog.view_event", "directory.view_user", "directory.view_group")
    return live_server.url, create_api_token(user=reader).key


def test_the_event_stream_reads_every_event_once_and_matches_the_contract(elastic_server) -> None:
    base_url, token = elastic_server
    expected = Event.objects.count()
    documents, paginations = poll(base_url, "/api/v3/events/events/", token)
    assert len(documents) == expected >= 3500
    events = [json.loads(document) for document in documents]
    assert len({event["pk"] for event in events}) == expected  # no duplicates, no gaps
    for event in events:
        check_event(event)
    first = paginations[0]
    assert first["previous"] == 0 and first["current"] == 1 and first["start_index"] == 1
    assert paginations[-1]["next"] == 0
    assert [p["current"] for p in paginations] == list(range(1, len(paginations) + 1))
    created = [event["created"] for event in events]
    assert created == sorted(created, reverse=True)  # authentik's default order


def test_a_second_interval_rereads_byte_identical_documents(elastic_server) -> None:
    base_url, token = elastic_server
    first, _ = poll(base_url, "/api/v3/events/events/", token)
    second, _ = poll(base_url, "/api/v3/events/events/", token)
    assert first == second  # the fingerprint _id stays the same: no duplicates in Elasticsearch


def test_the_group_stream_matches_the_contract(elastic_server) -> None:
    base_url, token = elastic_server
    documents, _ = poll(base_url, "/api/v3/core/groups/", token, extra={"include_users": "false"})
    groups = [json.loads(document) for document in documents]
    assert len(groups) == Group.objects.count()
    for group in groups:
        check_group(group)
    assert [g["name"] for g in groups] == sorted(g["name"] for g in groups)


def test_the_user_stream_matches_the_contract(elastic_server) -> None:
    base_url, token = elastic_server
    documents, _ = poll(
        base_url, "/api/v3/core/users/", token, page_size=7, extra={"include_groups": "false"}
    )
    users = [json.loads(document) for document in documents]
    assert len(users) == User.objects.exclude_anonymous().count()
    assert "AnonymousUser" not in {user["username"] for user in users}
    for user in users:
        check_user(user)
    assert [u["username"] for u in users] == sorted(u["username"] for u in users)


def test_a_bad_token_is_an_error_document_not_a_crash(elastic_server) -> None:
    base_url, _ = elastic_server
    request = Request(
        base_url + "/api/v3/events/events/?page=1&page_size=1000",
        headers={"Authorization": "Bearer xxxx"},
    )
    from urllib.error import HTTPError

    with pytest.raises(HTTPError) as error:
        urlopen(request, timeout=30)
    assert error.value.code == 403
    assert json.loads(error.value.read()) == {"detail": "Token invalid/expired"}
