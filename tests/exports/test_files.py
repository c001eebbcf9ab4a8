"""The files: the same rows, order and values as the list API for the same query, in CSV and
JSON Lines, with formulas neutralised and no secrets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from auditlog.api.serializers import EventSerializer
from auditlog.models import Event, EventAction
from auditlog.sanitize import get_user
from directory.api.serializers import UserSerializer
from directory.models import Group, Token, TokenIntent, User
from exports.api.serializers import EventExportSerializer, UserExportSerializer
from exports.models import DataExport, ExportStatus
from exports.writers import Layout
from tests.exports.conftest import (
    EVENTS,
    USERS,
    csv_header,
    csv_rows,
    jsonl_rows,
    list_results,
    stored_text,
)

pytestmark = pytest.mark.django_db

EVENT_LABELS = [
    "Pk",
    "Action",
    "App",
    "Context",
    "Client ip",
    "Created",
    "Expires",
    "Brand",
    "User pk",
    "Username",
    "Email",
]
USER_LABELS = [
    "Pk",
    "Username",
    "Name",
    "Is active",
    "Last login",
    "Groups",
    "Roles",
    "Roles obj",
    "Email",
    "Avatar",
    "Attributes",
    "Uid",
    "Path",
    "Type",
    "Uuid",
    "Password change date",
    "Date joined",
    "Last updated",
]


def make_event(action: str = EventAction.LOGIN, *, user: Any = None, **context: Any) -> Event:
    event = Event(action=action, app="tests", context=context, client_ip=context.pop("ip", None))
    if user is not None:
        event.user = get_user(user)
    event.save()
    return event


@pytest.fixture(params=["database", "python"])
def formatting(request, monkeypatch) -> str:
    """Rows formatted by PostgreSQL (where it can) or by Python: both must match the API."""
    if request.param == "python":
        monkeypatch.setattr(Layout, "rendered_by_database", lambda *args, **kwargs: None)
    return str(request.param)


@pytest.fixture
def events(admin_user: User, nobody: User) -> list[Event]:
    ingested = Event(action=EventAction.LOGIN, app="=ingest", context={"quote": 'a "b", c'})
    ingested.user = {"pk": "-1", "username": "@x", "email": "+e@example.com"}
    ingested.brand = {}
    ingested.save()
    # What COPY's text format escapes (backslash, tab, CR, LF), in a column and in JSON.
    awkward = Event(
        action=EventAction.LOGIN,
        app="a\tb\\c\r\nd é",
        context={"path": "C:\\temp\\x", "text": "tab\there\r\nnext \\n ✓", "v": "\x0b\x0c\x08"},
    )
    awkward.save()
    made = [
        make_event(user=admin_user, ip="81.2.69.142", geo={"city": "Zürich", "country": "CH"}),
        make_event(EventAction.LOGOUT, user=nobody, message="bye\nsecond line"),
        make_event(EventAction.LOGIN_FAILED, username="mallory", message="=HYPERLINK(1)"),
        make_event(EventAction.MODEL_CREATED, user=admin_user, model={"app": "x", "pk": 5}),
        make_event(EventAction.LOGIN, user=nobody, ip="2001:db8::1", nested={"a": [1, 2.5, None]}),
        ingested,
        awkward,
    ]
    # Distinct creation times, so the default order is meaningful; one on a whole second.
    base = timezone.now().replace(microsecond=0)
    for age, event in enumerate(made):
        Event.objects.filter(pk=event.pk).update(
            created=base - timedelta(hours=age, microseconds=age * 1001)
        )
    return made


def export_of(client, request_export, list_url: str, params: dict[str, Any]) -> DataExport:
    response = request_export(client, list_url, params)
    assert response.status_code == 201, response.content
    export = DataExport.objects.get(pk=response.json()["id"])
    assert export.status == ExportStatus.COMPLETED, export.error
    return export


def text_cell(value: Any) -> str:
    """What a CSV text cell holds: formulas get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and text else text


def expected_event_cells(result: dict[str, Any]) -> dict[str, Any]:
    user = result["user"]
    return {
        "Pk": result["pk"],
        "Action": text_cell(result["action"]),
        "App": text_cell(result["app"]),
        "Context": result["context"],
        "Client ip": result["client_ip"] or "",
        "Created": result["created"],
        "Expires": result["expires"],
        "Brand": result["brand"],
        "User pk": text_cell(user.get("pk")),
        "Username": text_cell(user.get("username")),
        "Email": text_cell(user.get("email")),
    }


def parsed_event_row(row: dict[str, str]) -> dict[str, Any]:
    return {**row, "Context": json.loads(row["Context"]), "Brand": json.loads(row["Brand"])}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"actions": ["login", "logout"]},
        {"action": "login"},
        {"username": "nobody"},
        {"search": 'action = "login" and client_ip = "81.2.69.142"'},
        {"search": "mallory"},
        {"ordering": "action"},
        {"ordering": "-username,created"},
        {"context_model_pk": "5"},
    ],
)
def test_the_event_csv_has_the_rows_of_the_list_api(
    api_as, exporter, events, request_export, params, formatting
) -> None:
    client = api_as(exporter)
    export = export_of(client, request_export, EVENTS, params)
    expected = [expected_event_cells(result) for result in list_results(client, EVENTS, params)]
    text = stored_text(export)
    assert csv_header(text) == EVENT_LABELS
    rows = [parsed_event_row(row) for row in csv_rows(text)]
    # The list API is queried after the export, so it also shows the export_ready event.
    expected = [row for row in expected if row["Action"] != EventAction.EXPORT_READY]
    assert rows == expected
    assert rows
    assert export.row_count == len(expected)


@pytest.mark.parametrize(
    "params",
    [{}, {"actions": ["logout", "login_failed"]}, {"search": "nobody"}, {"ordering": "-action"}],
)
def test_the_event_jsonl_lines_are_the_list_api_results(
    api_as, exporter, events, request_export, params, formatting
) -> None:
    client = api_as(exporter)
    export = export_of(client, request_export, EVENTS, {**params, "format": "jsonl"})
    expected = [
        result
        for result in list_results(client, EVENTS, params)
        if result["action"] != EventAction.EXPORT_READY
    ]
    lines = jsonl_rows(stored_text(export))
    assert lines == expected
    assert all(list(line) == list(EventSerializer.Meta.fields) for line in lines)
    assert export.file.name == f"exports/events_{export.pk}.jsonl"


@pytest.fixture
def directory(admin_user: User, nobody: User) -> list[User]:
    sales = Group.objects.create(name="Sales", attributes={"floor": 2})
    alpha = Group.objects.create(name="Alpha")
    ana = User.objects.create_user(
        "ana", "ana@example.com", "ana-password-1", name="Ana Ávila", attributes={"count": 3}
    )
    ben = User.objects.create_user("ben", "=cmd@example.com", name="+Ben", is_active=False)
    sales.users.add(ana, ben)
    alpha.users.add(ana)
    return [ana, ben]


def expected_user_cells(result: dict[str, Any]) -> dict[str, Any]:
    def cell(value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, dict | list) else text_cell(value)

    cells = {
        label: cell(result[name])
        for name, label in zip(UserExportSerializer.Meta.fields, USER_LABELS, strict=True)
    }
    cells["Groups"] = ", ".join(group["name"] for group in result["groups_obj"])
    return cells


def parsed_user_row(row: dict[str, str]) -> dict[str, Any]:
    return {
        **row,
        "Attributes": json.loads(row["Attributes"]),
        "Roles": json.loads(row["Roles"]),
        "Roles obj": json.loads(row["Roles obj"]),
    }


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"search": "ana"},
        {"search": "attributes.count = 3"},
        {"is_active": "false"},
        {"groups_by_name": ["Sales", "Alpha"]},
        {"ordering": "-email"},
        {"is_superuser": "true"},
    ],
)
def test_the_user_csv_has_the_rows_of_the_list_api(
    api_as, exporter, directory, request_export, params
) -> None:
    client = api_as(exporter)
    export = export_of(client, request_export, USERS, params)
    text = stored_text(export)
    assert csv_header(text) == USER_LABELS
    rows = [parsed_user_row(row) for row in csv_rows(text)]
    assert rows == [expected_user_cells(result) for result in list_results(client, USERS, params)]
    assert export.file.name == f"exports/users_{export.pk}.csv"


@pytest.mark.parametrize(
    "params", [{}, {"include_groups": "false"}, {"ordering": "-username"}, {"search": "ben"}]
)
def test_the_user_jsonl_lines_are_the_list_api_results(
    api_as, exporter, directory, request_export, params
) -> None:
    client = api_as(exporter)
    export = export_of(client, request_export, USERS, {**params, "format": "jsonl"})
    lines = jsonl_rows(stored_text(export))
    assert lines == list_results(client, USERS, params)
    assert all(list(line) == list(UserSerializer.Meta.fields) for line in lines)


def test_the_ana_row_reads_as_expected(api_as, exporter, directory, request_export) -> None:
    export = export_of(api_as(exporter), request_export, USERS, {"username": "ana"})
    (row,) = csv_rows(stored_text(export))
    assert row["Groups"] == "Alpha, Sales"
    assert row["Name"] == "Ana Ávila"
    assert row["Is active"] == "true"
    assert row["Last login"] == ""
    assert json.loads(row["Attributes"]) == {"count": 3}


def test_cells_that_a_spreadsheet_would_run_are_neutralised(
    api_as, exporter, admin_user, request_export, formatting
) -> None:
    payloads = ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx")
    for payload in payloads:
        event = Event(action=EventAction.LOGIN, app=payload, context={"m": payload})
        event.user = {"pk": payload, "username": payload, "email": payload}
        event.save()
    export = export_of(api_as(exporter), request_export, EVENTS, {"actions": "login"})
    rows = csv_rows(stored_text(export))
    for column in ("App", "User pk", "Username", "Email"):
        assert sorted(row[column] for row in rows) == sorted("'" + p for p in payloads), column
    assert {json.loads(row["Context"])["m"] for row in rows} == set(payloads)


def test_times_follow_the_configured_time_zone_like_the_api(
    api_as, exporter, events, request_export, settings
) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    client = api_as(exporter)
    export = export_of(client, request_export, EVENTS, {"actions": "logout"})
    (row,) = csv_rows(stored_text(export))
    (result,) = list_results(client, EVENTS, {"actions": "logout"})
    assert row["Created"] == result["created"]
    assert row["Created"].endswith(("+01:00", "+02:00"))


def test_formulas_in_user_fields_are_neutralised(
    api_as, exporter, directory, request_export
) -> None:
    export = export_of(api_as(exporter), request_export, USERS, {"username": "ben"})
    (row,) = csv_rows(stored_text(export))
    assert row["Name"] == "'+Ben"
    assert row["Email"] == "'=cmd@example.com"


def test_jsonl_keeps_the_values_unchanged(api_as, exporter, directory, request_export) -> None:
    export = export_of(
        api_as(exporter), request_export, USERS, {"username": "ben", "format": "jsonl"}
    )
    (line,) = jsonl_rows(stored_text(export))
    assert line["name"] == "+Ben"
    assert line["email"] == "=cmd@example.com"


def test_no_password_hash_or_token_key_reaches_a_file(
    api_as, exporter, directory, request_export
) -> None:
    ana = directory[0]
    token = Token.objects.create(user=ana, identifier="ana-api", intent=TokenIntent.API)
    client = api_as(exporter)
    texts = [
        stored_text(export_of(client, request_export, USERS, {"format": fmt}))
        for fmt in ("csv", "jsonl")
    ] + [
        stored_text(export_of(client, request_export, EVENTS, {"format": fmt}))
        for fmt in ("csv", "jsonl")
    ]
    ana.refresh_from_db()
    for text in texts:
        assert ana.password not in text
        assert "md5$" not in text and "pbkdf2" not in text
        assert token.key not in text


def test_the_fast_rows_equal_the_export_serializers(
    api_as, exporter, events, directory, request_export
) -> None:
    """The hand-written formatting agrees with the serializers, value by value."""
    from exports.writers import csv_cell

    client = api_as(exporter)
    event_export = export_of(client, request_export, EVENTS, {"ordering": "pk"})
    event_rows = csv_rows(stored_text(event_export))
    by_pk = {str(event.pk): event for event in Event.objects.all()}
    for row in event_rows:
        data = EventExportSerializer(by_pk[row["Pk"]]).data
        for label, name in zip(EVENT_LABELS, data, strict=True):
            if name in ("context", "brand"):
                assert json.loads(row[label]) == data[name]
            else:
                assert row[label] == csv_cell(data[name]), name

    user_export = export_of(client, request_export, USERS, {})
    queryset = User.objects.exclude_anonymous().with_superuser_flag()
    for row in csv_rows(stored_text(user_export)):
        data = UserExportSerializer(queryset.get(pk=row["Pk"])).data
        for label, name in zip(USER_LABELS, data, strict=True):
            if name in ("attributes", "roles", "roles_obj"):
                assert json.loads(row[label]) == data[name]
            else:
                assert row[label] == csv_cell(data[name]), name


def test_a_serializer_field_without_a_formatter_stops_the_export(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from exports.writers import EventLayout

    monkeypatch.setattr(EventLayout, "csv_columns", {**EventLayout.csv_columns, "expiring": "E"})
    layout = EventLayout(params={}, vendor="sqlite")
    with pytest.raises(ImproperlyConfigured, match="expiring"):
        layout.renders(as_json=False)


def test_a_filter_that_matches_nothing_gives_a_file_with_only_the_header(
    api_as, exporter, request_export
) -> None:
    from exports.api.lists import _compile

    _compile(Event.objects.filter(pk__in=[]))  # nothing to match is no error
    export = export_of(api_as(exporter), request_export, EVENTS, {"username": "no-such-user"})
    assert export.row_count == 0
    text = stored_text(export)
    assert csv_header(text) == EVENT_LABELS
    assert csv_rows(text) == []


def test_every_supported_model_has_a_listing_and_a_layout() -> None:
    from exports.models import SUPPORTED_MODELS
    from exports.services import LISTINGS
    from exports.writers import LAYOUTS

    assert set(SUPPORTED_MODELS) == set(LISTINGS) == set(LAYOUTS)
