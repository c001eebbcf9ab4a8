"""Building an export in the background: notification and event when ready, failures that say
why, and a task that is safe to run twice or after a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client

from auditlog.models import Event, EventAction
from auditlog.sanitize import get_user, model_to_dict
from auditlog.services import record_event
from directory.models import Group, User
from exports import services
from exports.models import DataExport, ExportStatus
from exports.tasks import generate_export
from notifications.models import Notification, NotificationSeverity
from project import celery_app
from tests.conftest import grant
from tests.exports.conftest import EVENTS, EXPORTS, USERS, csv_rows, export_url, stored_text

pytestmark = pytest.mark.django_db


class WorkerDied(BaseException):
    """Stands for the worker process being killed: nothing in the build catches it."""


def queued_export(user: User | None, model: str = "event", **fields: Any) -> DataExport:
    app_label = "auditlog" if model == "event" else "directory"
    return DataExport.objects.create(
        requested_by=user,
        content_type=ContentType.objects.get_by_natural_key(app_label, model),
        **fields,
    )


def stored_files(media_root: Path) -> list[str]:
    folder = media_root / "exports"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def login_event(username: str = "ana") -> Event:
    return record_event(action=EventAction.LOGIN, app="tests", context={"username": username})


# --- Ready ----------------------------------------------------------------------------------


def test_the_requester_is_notified_and_the_link_downloads_the_file(
    api_as, exporter, request_export
) -> None:
    login_event()
    response = request_export(api_as(exporter), EVENTS, {"actions": "login"})
    export = DataExport.objects.get(pk=response.json()["id"])
    assert export.status == ExportStatus.COMPLETED and export.completed
    assert export.row_count == 1
    assert export.attempts == 1
    assert export.started_on is not None and export.finished_on is not None

    notification = Notification.objects.get(user=exporter)
    assert notification.severity == NotificationSeverity.NOTICE
    assert notification.body == "Event export generated successfully"
    assert notification.hyperlink == f"/exports/{export.pk}/download/"
    assert notification.hyperlink_label == "Download"
    event = notification.event
    assert event is not None
    assert event.action == EventAction.EXPORT_READY
    assert event.user == get_user(exporter)
    assert event.context == {
        "message": "Event export generated successfully",
        "export": model_to_dict(export),
    }

    browser = Client()
    browser.force_login(exporter)
    download = browser.get(notification.hyperlink)
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="events_{export.pk}.csv"'
    assert b"".join(download.streaming_content).decode() == stored_text(export)

    body = api_as(exporter).get(f"{EXPORTS}{export.pk}/").json()
    assert body["file_url"] == notification.hyperlink
    assert body["completed"] is True
    assert body["status"] == "completed"
    assert body["row_count"] == 1


def test_a_user_export_says_user_export(api_as, exporter, request_export) -> None:
    request_export(api_as(exporter), USERS)
    notification = Notification.objects.get(user=exporter)
    assert notification.body == "User export generated successfully"
    assert notification.event.context["message"] == "User export generated successfully"


def test_the_export_follows_the_data_in_chunks(
    api_as, exporter, request_export, monkeypatch
) -> None:
    """Rows read a few at a time still get the right groups (fetched per chunk)."""
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    group = Group.objects.create(name="Chunked")
    for index in range(7):
        user = User.objects.create_user(f"user{index}")
        if index % 2:
            group.users.add(user)
    response = request_export(api_as(exporter), USERS, {"path": "users", "ordering": "username"})
    export = DataExport.objects.get(pk=response.json()["id"])
    rows = {row["Username"]: row["Groups"] for row in csv_rows(stored_text(export))}
    assert {name: rows[name] for name in rows if name.startswith("user")} == {
        f"user{index}": ("Chunked" if index % 2 else "") for index in range(7)
    }


# --- Safe to run twice, and after a crash ---------------------------------------------------


def test_the_export_is_built_once_when_the_task_runs_twice(exporter, media_root) -> None:
    login_event()
    export = queued_export(exporter)
    generate_export.delay(str(export.pk))
    first = stored_text(export)
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.attempts == 1
    assert stored_text(export) == first
    assert stored_files(media_root) == [f"events_{export.pk}.csv"]
    assert Notification.objects.filter(user=exporter).count() == 1
    assert Event.objects.filter(action=EventAction.EXPORT_READY).count() == 1


def test_a_rerun_after_a_crash_mid_build_completes(exporter, media_root, monkeypatch) -> None:
    login_event()
    export = queued_export(exporter)
    real_store = services._store

    def store_half_then_die(export: DataExport, content: Any) -> str:
        real_store(export, content)  # the file is stored, the export not yet completed
        raise WorkerDied

    monkeypatch.setattr(services, "_store", store_half_then_die)
    with pytest.raises(WorkerDied):
        services.build_export(export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.RUNNING
    assert not export.completed  # nothing is offered yet
    monkeypatch.setattr(services, "_store", real_store)

    generate_export.delay(str(export.pk))  # the broker delivers the task again
    export.refresh_from_db()
    assert export.status == ExportStatus.COMPLETED
    assert export.attempts == 2
    assert csv_rows(stored_text(export))[0]["Action"] == "login"
    assert stored_files(media_root) == [f"events_{export.pk}.csv"]
    assert Notification.objects.filter(user=exporter).count() == 1


def test_an_export_that_keeps_crashing_is_given_up(exporter, media_root, monkeypatch) -> None:
    export = queued_export(exporter)

    def die(*args: Any) -> int:
        raise WorkerDied

    monkeypatch.setitem(services.WRITERS, "csv", die)
    for _ in range(services.MAX_ATTEMPTS):
        with pytest.raises(WorkerDied):
            services.build_export(export.pk)
    assert services.build_export(export.pk) is None  # the next delivery gives up
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert "interrupted 3 times" in export.error
    alert = Notification.objects.get(user=exporter)
    assert alert.severity == NotificationSeverity.ALERT
    assert alert.body.startswith("Event export failed: The export was interrupted 3 times")
    assert stored_files(media_root) == []


@pytest.fixture
def eager_retries(monkeypatch) -> None:
    """Let an eager task retry in-process (propagating would raise the Retry instead)."""
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


@pytest.mark.usefixtures("eager_retries")
def test_an_error_is_retried_and_a_later_attempt_succeeds(exporter, monkeypatch) -> None:
    login_event()
    export = queued_export(exporter, query_params={"actions": "login"})
    real_write = services.WRITERS["csv"]
    calls = []

    def flaky(*args: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        return real_write(*args)

    monkeypatch.setitem(services.WRITERS, "csv", flaky)
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.COMPLETED
    assert export.attempts == 2
    assert export.row_count == 1


@pytest.mark.usefixtures("eager_retries")
def test_an_error_that_persists_fails_the_export_and_alerts_the_requester(
    exporter, media_root, monkeypatch
) -> None:
    export = queued_export(exporter)

    def broken(*args: Any) -> int:
        raise RuntimeError("disk full, password=hunter22")

    monkeypatch.setitem(services.WRITERS, "csv", broken)
    generate_export.delay(str(export.pk))  # retried in-process (eager) until given up
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.attempts == services.MAX_ATTEMPTS
    assert export.error == (
        "The export failed 3 times (last error: RuntimeError; the details are in the worker's log)."
    )
    assert not export.completed and not export.file
    alert = Notification.objects.get(user=exporter)
    assert alert.severity == NotificationSeverity.ALERT
    assert alert.body == f"Event export failed: {export.error}"
    assert stored_files(media_root) == []
    assert not Event.objects.filter(action=EventAction.EXPORT_READY).exists()


# --- Refusals at build time -----------------------------------------------------------------


def test_a_requester_who_lost_the_view_permission_gets_a_failed_export(
    api_as, exporter, media_root
) -> None:
    response = api_as(exporter).post(export_url(EVENTS))  # built later: not run on commit
    export = DataExport.objects.get(pk=response.json()["id"])
    Group.objects.get(name="Test auditors").permissions.clear()
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error == "auditor may no longer view events."
    assert export.attempts == 1  # a refusal is not retried
    alert = Notification.objects.get(user=exporter)
    assert alert.severity == NotificationSeverity.ALERT
    assert alert.body == "Event export failed: auditor may no longer view events."
    assert alert.hyperlink is None
    assert stored_files(media_root) == []


def test_an_export_of_a_deleted_requester_fails_without_a_notification(nobody) -> None:
    export = queued_export(None)
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error == "The user who requested the export no longer exists."
    assert not Notification.objects.exists()


def test_a_deactivated_requester_gets_no_file(exporter) -> None:
    User.objects.filter(pk=exporter.pk).update(is_active=False)
    export = queued_export(exporter)
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error == "auditor is deactivated."


def test_filters_that_became_invalid_fail_the_export_with_the_reason(api_as, exporter) -> None:
    Group.objects.create(name="Temporary")
    response = api_as(exporter).post(export_url(USERS, {"groups_by_name": "Temporary"}))
    export = DataExport.objects.get(pk=response.json()["id"])
    Group.objects.filter(name="Temporary").delete()
    generate_export.delay(str(export.pk))
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error.startswith("The export's filters are no longer valid: groups_by_name:")
    assert "Temporary" in export.error


def test_a_completed_or_failed_export_is_never_rebuilt(exporter) -> None:
    done = queued_export(exporter, status=ExportStatus.COMPLETED, completed=True, attempts=1)
    failed = queued_export(exporter, status=ExportStatus.FAILED, error="x", attempts=1)
    for export in (done, failed):
        assert services.build_export(export.pk) is None
        export.refresh_from_db()
        assert export.attempts == 1
    assert not Notification.objects.exists()


# --- Deleting -------------------------------------------------------------------------------


def test_deleting_an_export_deletes_its_file(
    api_as, exporter, request_export, media_root, django_capture_on_commit_callbacks
) -> None:
    client = api_as(exporter)
    export_id = request_export(client, EVENTS).json()["id"]
    assert stored_files(media_root) == [f"events_{export_id}.csv"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"{EXPORTS}{export_id}/")
    assert response.status_code == 204
    assert not DataExport.objects.filter(pk=export_id).exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)
def test_the_file_goes_when_the_deletion_commits_and_stays_when_it_rolls_back(
    auditor, media_root
) -> None:
    exporter = grant(auditor, "exports.add_dataexport")
    login_event()
    export = queued_export(exporter)
    services.build_export(export.pk)
    assert stored_files(media_root) == [f"events_{export.pk}.csv"]

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        DataExport.objects.filter(pk=export.pk).delete()
        raise Undo
    assert stored_files(media_root) == [f"events_{export.pk}.csv"]

    services.delete_export(export=DataExport.objects.get(pk=export.pk))
    assert stored_files(media_root) == []


def test_an_export_deleted_while_it_is_built_leaves_no_file(
    exporter, media_root, monkeypatch
) -> None:
    login_event()
    export = queued_export(exporter)
    real_store = services._store

    def delete_then_store(export: DataExport, content: Any) -> str:
        DataExport.objects.filter(pk=export.pk).delete()  # someone deletes it meanwhile
        return real_store(export, content)

    monkeypatch.setattr(services, "_store", delete_then_store)
    assert services.build_export(export.pk) is None
    assert stored_files(media_root) == []
    assert not Notification.objects.exists()
