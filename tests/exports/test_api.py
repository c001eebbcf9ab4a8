"""Requesting exports (``POST <list>/export/``) and managing them (``/api/v3/reports/exports/``):
shapes, validation, permissions and visibility."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest
from django.test import Client

from auditlog.models import Event, EventAction
from directory.models import ANONYMOUS_USERNAME, User
from exports.models import DataExport, ExportStatus
from tests.conftest import grant
from tests.exports.conftest import EVENTS, EXPORTS, USERS, celery_sends_to, export_url

pytestmark = pytest.mark.django_db

EXPORT_FIELDS = {
    "id",
    "requested_by",
    "requested_on",
    "content_type",
    "query_params",
    "file_url",
    "completed",
    "status",
    "error",
    "row_count",
    "format",
}


def test_an_event_export_is_created_with_authentiks_shape(api_as, exporter) -> None:
    response = api_as(exporter).post(export_url(EVENTS))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == EXPORT_FIELDS
    assert response["Location"] == f"/api/v3/reports/exports/{body['id']}/"
    assert body["requested_by"] == {
        "pk": exporter.pk,
        "username": "auditor",
        "name": "",
        "is_active": True,
        "last_login": None,
        "email": "auditor@example.com",
        "attributes": {},
        "uid": exporter.uid,
    }
    assert body["content_type"]["app_label"] == "auditlog"
    assert body["content_type"]["model"] == "event"
    assert body["content_type"]["verbose_name_plural"] == "Events"
    assert isinstance(body["content_type"]["id"], int)
    assert body["query_params"] == {}
    assert body["file_url"] == ""
    assert body["completed"] is False
    assert body["status"] == "queued"
    assert body["format"] == "csv"
    assert body["requested_on"].endswith("Z")


def test_the_query_parameters_are_stored_with_repeated_keys_as_lists(api_as, exporter) -> None:
    params = {
        "actions": ["login", "logout"],
        "search": "admin",
        "ordering": "-created",
        "format": "jsonl",
    }
    response = api_as(exporter).post(export_url(EVENTS, params))
    assert response.status_code == 201, response.content
    assert response.json()["query_params"] == {
        "actions": ["login", "logout"],
        "search": "admin",
        "ordering": "-created",
    }
    assert response.json()["format"] == "jsonl"


def test_a_user_export_names_users(api_as, auditor) -> None:
    client = api_as(grant(auditor, "exports.add_dataexport"))
    response = client.post(export_url(USERS, {"search": "ana"}))
    assert response.status_code == 201
    assert response.json()["content_type"]["model"] == "user"
    assert response.json()["content_type"]["verbose_name_plural"] == "Users"


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ({"actions": "nonsense"}, "actions", "nonsense"),
        ({"client_ip": "not-an-ip"}, "client_ip", "not a valid IP address"),
        ({"ordering": "password"}, "ordering", "Cannot order by password"),
        ({"search": 'action = "login" and'}, "search", None),
        ({"search": "nosuchfield = 1"}, "search", "nosuchfield"),
        ({"format": "xlsx"}, "format", "'xlsx' is not a format; use csv, jsonl."),
    ],
)
def test_bad_parameters_are_refused_like_the_list_and_nothing_is_stored(
    api_as, exporter, params, key, message
) -> None:
    client = api_as(exporter)
    response = client.post(export_url(EVENTS, params))
    assert response.status_code == 400, response.content
    body = response.json()
    assert key in body
    if message:
        assert message in json.dumps(body)
    listed = client.get(EVENTS, {k: v for k, v in params.items() if k != "format"})
    if key != "format":
        assert listed.status_code == 400
        assert listed.json() == body
    assert not DataExport.objects.exists()


def test_bad_user_filters_are_refused_like_the_list(api_as, exporter) -> None:
    response = api_as(exporter).post(export_url(USERS, {"attributes": "{not json"}))
    assert response.status_code == 400
    assert response.json() == {"attributes": ["filter: failed to parse JSON"]}
    assert not DataExport.objects.exists()


def test_format_json_still_works_on_the_schema(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.get("/api/v3/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")


@pytest.mark.parametrize("who", ["anonymous", "nobody", "auditor", "add_only"])
def test_exporting_needs_the_add_and_the_view_permission(api_as, request, who) -> None:
    user: User | None = None
    if who == "nobody":
        user = request.getfixturevalue("nobody")
    elif who == "auditor":  # may read events, but not export them
        user = request.getfixturevalue("auditor")
    elif who == "add_only":  # may export, but not read events or users
        user = grant(request.getfixturevalue("nobody"), "exports.add_dataexport")
    client = api_as(user)
    for list_url in (EVENTS, USERS):
        response = client.post(export_url(list_url))
        assert response.status_code == 403, (who, list_url)
    assert not DataExport.objects.exists()


def test_the_view_permission_of_the_exported_model_is_what_counts(api_as, nobody) -> None:
    users_only = grant(nobody, "exports.add_dataexport", "directory.view_user")
    client = api_as(users_only)
    assert client.post(export_url(USERS)).status_code == 201
    assert client.post(export_url(EVENTS)).status_code == 403


def test_the_export_schema_takes_the_lists_parameters(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    paths = client.get("/api/v3/schema/", {"format": "json"}).json()["paths"]
    # An export is the whole search: the list's paging and its pull cursor (after=) do not
    # apply to it.
    for list_url, extra in ((EVENTS, {"after"}), (USERS, {"include_groups", "include_roles"})):
        listed = {p["name"] for p in paths[list_url]["get"]["parameters"]}
        exported = {p["name"] for p in paths[f"{list_url}export/"]["post"]["parameters"]}
        assert exported == (listed - {"page", "page_size"} - extra) | {"format"}
    assert "/api/v3/reports/exports/{pk}/download/" in paths
    assert set(paths["/api/v3/reports/exports/"]) == {"get"}
    assert set(paths["/api/v3/reports/exports/{pk}/"]) == {"get", "delete"}


# --- The exports list -----------------------------------------------------------------------


def make_export(user: User | None, model: str = "event", **fields) -> DataExport:
    from django.contrib.contenttypes.models import ContentType

    app_label = "auditlog" if model == "event" else "directory"
    return DataExport.objects.create(
        requested_by=user,
        content_type=ContentType.objects.get_by_natural_key(app_label, model),
        **fields,
    )


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_user_sees_only_their_own_exports(api_as, exporter, nobody) -> None:
    other = grant(
        User.objects.create_user("other", "o@example.com"),
        "exports.add_dataexport",
        "auditlog.view_event",
    )
    mine = make_export(exporter)
    theirs = make_export(other)
    client = api_as(exporter)
    assert ids(client.get(EXPORTS)) == [str(mine.pk)]
    assert client.get(f"{EXPORTS}{theirs.pk}/").status_code == 404
    assert client.delete(f"{EXPORTS}{theirs.pk}/").status_code == 404
    assert client.get(f"{EXPORTS}{mine.pk}/").json()["id"] == str(mine.pk)
    assert DataExport.objects.filter(pk=theirs.pk).exists()


def test_view_dataexport_shows_everyones_exports(api_as, exporter, auditor) -> None:
    mine = make_export(exporter)
    gone = make_export(None)
    viewer = grant(
        User.objects.create_user("viewer"), "exports.view_dataexport", "auditlog.view_event"
    )
    body = api_as(viewer).get(EXPORTS).json()
    assert {row["id"] for row in body["results"]} == {str(mine.pk), str(gone.pk)}
    # authentik 2026.8's schema requires a user: a deleted requester is the anonymous stand-in.
    orphan = next(r for r in body["results"] if r["id"] == str(gone.pk))["requested_by"]
    assert orphan["username"] == ANONYMOUS_USERNAME


def test_an_owner_who_loses_the_view_permission_no_longer_sees_the_export(api_as, nobody) -> None:
    owner = grant(
        nobody, "exports.add_dataexport", "exports.view_dataexport", "directory.view_user"
    )
    export = make_export(owner, "user")
    client = api_as(owner)
    assert ids(client.get(EXPORTS)) == [str(export.pk)]
    owner.user_permissions.remove(
        owner.user_permissions.get(codename="view_user", content_type__app_label="directory")
    )
    client = api_as(User.objects.get(pk=owner.pk))
    assert client.get(f"{EXPORTS}{export.pk}/").status_code == 404
    assert ids(client.get(EXPORTS)) == []


@pytest.mark.parametrize("who", ["anonymous", "nobody"])
def test_the_exports_list_refuses_users_without_rights(api_as, request, who) -> None:
    user = request.getfixturevalue("nobody") if who == "nobody" else None
    export = make_export(None)
    client = api_as(user)
    assert client.get(EXPORTS).status_code == 403
    assert client.get(f"{EXPORTS}{export.pk}/").status_code == 403
    assert client.delete(f"{EXPORTS}{export.pk}/").status_code == 403


def test_the_exports_list_is_ordered_and_searchable(api_as, admin_user, exporter) -> None:
    first = make_export(exporter)
    second = make_export(admin_user, "user", completed=True)
    client = api_as(admin_user)
    assert ids(client.get(EXPORTS)) == [str(second.pk), str(first.pk)]
    assert ids(client.get(EXPORTS, {"ordering": "requested_on"})) == [str(first.pk), str(second.pk)]
    assert ids(client.get(EXPORTS, {"ordering": "-completed"}))[0] == str(second.pk)
    assert ids(client.get(EXPORTS, {"ordering": "content_type__model"}))[0] == str(first.pk)
    assert ids(client.get(EXPORTS, {"ordering": "requested_by"})) == [str(second.pk), str(first.pk)]
    assert ids(client.get(EXPORTS, {"search": "auditor"})) == [str(first.pk)]
    assert ids(client.get(EXPORTS, {"search": "user"})) == [str(second.pk)]
    assert client.get(EXPORTS, {"ordering": "error"}).status_code == 400


def test_exports_cannot_be_created_or_changed_through_the_management_api(
    api_as, admin_user
) -> None:
    export = make_export(admin_user)
    client = api_as(admin_user)
    assert client.post(EXPORTS, {}).status_code == 405
    assert client.patch(f"{EXPORTS}{export.pk}/", {"completed": True}).status_code == 405


def test_only_the_owner_or_a_delete_permission_holder_deletes(api_as, exporter) -> None:
    export = make_export(exporter)
    viewer = grant(
        User.objects.create_user("viewer"), "exports.view_dataexport", "auditlog.view_event"
    )
    assert api_as(viewer).delete(f"{EXPORTS}{export.pk}/").status_code == 403
    deleter = grant(viewer, "exports.delete_dataexport")
    assert api_as(deleter).delete(f"{EXPORTS}{export.pk}/").status_code == 204
    assert not DataExport.objects.exists()


def test_an_unknown_export_is_a_404(api_as, admin_user) -> None:
    client = api_as(admin_user)
    assert client.get(f"{EXPORTS}{uuid.uuid4()}/").status_code == 404
    assert client.get(f"{EXPORTS}not-a-uuid/").status_code == 404


# --- The broker being down ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_is_a_503_and_the_export_is_marked_failed(
    api_as, auditor, tmp_path: Path
) -> None:
    exporter = grant(auditor, "exports.add_dataexport")
    client = api_as(exporter)
    with celery_sends_to(f"redis://127.0.0.1:{closed_port()}/0"):
        response = client.post(export_url(EVENTS))
    assert response.status_code == 503, response.content
    assert "task queue is unavailable" in response.json()["detail"]
    export = DataExport.objects.get()
    assert export.status == ExportStatus.FAILED
    assert "task queue is unavailable" in export.error
    assert not Event.objects.filter(action=EventAction.EXPORT_READY).exists()
