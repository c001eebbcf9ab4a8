"""Export files are never public: they are downloaded through the web view (session) or the
API (token), both with the export list's permission checks."""

from __future__ import annotations

import pytest
from django.test import Client

from auditlog.models import EventAction
from auditlog.services import record_event
from directory.models import Group, User
from exports import files
from exports.models import DataExport, ExportStatus
from tests.conftest import grant
from tests.exports.conftest import EVENTS, EXPORTS, csv_rows, stored_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(api_as, exporter, request_export) -> DataExport:
    record_event(action=EventAction.LOGIN, app="tests", context={"username": "ana"})
    response = request_export(api_as(exporter), EVENTS, {"actions": "login"})
    export = DataExport.objects.get(pk=response.json()["id"])
    assert export.is_ready
    return export


def browser(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def web_url(export: DataExport) -> str:
    return f"/exports/{export.pk}/download/"


def api_url(export: DataExport) -> str:
    return f"{EXPORTS}{export.pk}/download/"


def test_the_owner_downloads_through_the_web_and_the_api(api_as, exporter, ready) -> None:
    expected = stored_text(ready)
    for response in (browser(exporter).get(web_url(ready)), api_as(exporter).get(api_url(ready))):
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="events_{ready.pk}.csv"'
        assert "no-store" in response["Cache-Control"]
        assert b"".join(response.streaming_content).decode() == expected
    assert [row["Action"] for row in csv_rows(expected)] == ["login"]


def test_a_jsonl_export_downloads_as_json_lines(api_as, exporter, request_export) -> None:
    response = request_export(api_as(exporter), EVENTS, {"format": "jsonl"})
    export = DataExport.objects.get(pk=response.json()["id"])
    download = browser(exporter).get(web_url(export))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/jsonl; charset=utf-8"
    assert download["Content-Disposition"] == f'attachment; filename="events_{export.pk}.jsonl"'


def test_a_signed_out_browser_is_sent_to_the_login_page(settings, ready) -> None:
    settings.LOGIN_URL = "/login/"
    response = browser(None).get(web_url(ready))
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next=/exports/{ready.pk}/download/")


def test_the_api_download_refuses_anonymous_and_users_without_rights(api_as, nobody, ready) -> None:
    assert api_as(None).get(api_url(ready)).status_code == 403
    assert api_as(nobody).get(api_url(ready)).status_code == 403


def test_someone_elses_export_is_a_404(api_as, nobody, ready) -> None:
    other = grant(nobody, "exports.add_dataexport", "auditlog.view_event")
    assert browser(other).get(web_url(ready)).status_code == 404
    assert api_as(other).get(api_url(ready)).status_code == 404
    assert browser(nobody).get(web_url(ready)).status_code == 404


def test_a_holder_of_view_dataexport_may_download(api_as, nobody, ready) -> None:
    viewer = grant(nobody, "exports.view_dataexport", "auditlog.view_event")
    assert browser(viewer).get(web_url(ready)).status_code == 200
    assert api_as(viewer).get(api_url(ready)).status_code == 200


def test_an_owner_who_lost_the_view_permission_cannot_download(api_as, exporter, ready) -> None:
    Group.objects.get(name="Test auditors").permissions.clear()
    owner = User.objects.get(pk=exporter.pk)
    assert browser(owner).get(web_url(ready)).status_code == 404
    assert api_as(owner).get(api_url(ready)).status_code == 404


@pytest.mark.parametrize("status", [ExportStatus.QUEUED, ExportStatus.RUNNING, ExportStatus.FAILED])
def test_an_export_that_is_not_ready_cannot_be_downloaded(api_as, exporter, ready, status) -> None:
    DataExport.objects.filter(pk=ready.pk).update(status=status, completed=False)
    assert browser(exporter).get(web_url(ready)).status_code == 404
    assert api_as(exporter).get(api_url(ready)).status_code == 404
    assert api_as(exporter).get(f"{EXPORTS}{ready.pk}/").json()["file_url"] == ""


def test_a_missing_file_is_a_404_not_a_500(exporter, ready) -> None:
    files.forget_file(ready.file.storage, ready.file.name)
    assert browser(exporter).get(web_url(ready)).status_code == 404


def test_the_file_has_no_public_url(exporter, ready, media_root) -> None:
    assert (media_root / ready.file.name).exists()
    for url in (f"/{ready.file.name}", f"/media/{ready.file.name}", f"/static/{ready.file.name}"):
        assert browser(exporter).get(url).status_code == 404, url


def test_an_unknown_export_is_a_404(exporter) -> None:
    assert (
        browser(exporter).get("/exports/00000000-0000-0000-0000-000000000000/download/").status_code
        == 404
    )
    assert browser(exporter).get("/exports/not-a-uuid/download/").status_code == 404


def test_the_web_download_only_answers_get(exporter, ready) -> None:
    client = Client(enforce_csrf_checks=False)
    client.force_login(exporter)
    assert client.post(web_url(ready)).status_code == 405


# --- file_url: the credentials that read the export download its file ----------------------


def file_url_of(client, export: DataExport) -> str:
    detail = client.get(f"{EXPORTS}{export.pk}/")
    assert detail.status_code == 200, detail.content
    url = detail.json()["file_url"]
    assert url
    return url


def test_an_api_client_downloads_the_file_url_with_its_bearer_token(
    api_as, exporter, ready
) -> None:
    client = api_as(exporter)
    url = file_url_of(client, ready)
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="events_{ready.pk}.csv"'
    assert "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content).decode() == stored_text(ready)


def test_a_browser_downloads_the_same_file_url_with_its_session(api_as, exporter, ready) -> None:
    url = file_url_of(api_as(exporter), ready)
    response = browser(exporter).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == stored_text(ready)


def test_a_jsonl_file_url_downloads_with_a_token(api_as, exporter, request_export) -> None:
    client = api_as(exporter)
    response = request_export(client, EVENTS, {"format": "jsonl"})
    export = DataExport.objects.get(pk=response.json()["id"])
    download = client.get(file_url_of(client, export))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/jsonl; charset=utf-8"
    assert b"".join(download.streaming_content).decode() == stored_text(export)


def test_the_file_url_refuses_a_token_without_rights_with_a_403_not_a_login_page(
    api_as, exporter, nobody, ready
) -> None:
    url = file_url_of(api_as(exporter), ready)
    response = api_as(nobody).get(url)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "You do not have permission to use data exports."}


def test_the_file_url_of_someone_elses_export_is_a_404_for_a_token(
    api_as, exporter, nobody, ready
) -> None:
    url = file_url_of(api_as(exporter), ready)
    other = grant(nobody, "exports.add_dataexport", "auditlog.view_event")
    response = api_as(other).get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert not response.has_header("Content-Disposition")


def test_the_file_url_refuses_an_invalid_token_without_redirecting(api_as, exporter, ready) -> None:
    url = file_url_of(api_as(exporter), ready)
    client = Client()
    response = client.get(url, HTTP_AUTHORIZATION="Bearer not-a-key")
    assert response.status_code == 403
    assert response.json() == {"detail": "Token invalid/expired"}


def test_the_file_url_of_an_export_that_is_not_ready_is_a_404_for_a_token(
    api_as, exporter, ready
) -> None:
    client = api_as(exporter)
    url = file_url_of(client, ready)
    DataExport.objects.filter(pk=ready.pk).update(status=ExportStatus.RUNNING, completed=False)
    assert client.get(url).status_code == 404


def test_a_browser_behind_a_basic_auth_proxy_still_downloads_with_its_session(
    exporter, ready
) -> None:
    response = browser(exporter).get(web_url(ready), HTTP_AUTHORIZATION="Basic cHJveHk6cHc=")
    assert response.status_code == 200
