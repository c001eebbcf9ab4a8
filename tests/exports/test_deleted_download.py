"""A Download link that outlived its export (the drawer keeps the notification) leads to a page
that says so and leads on to Data Exports, still with a 404 status."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from auditlog.models import EventAction
from auditlog.services import record_event
from directory.models import User
from exports.models import DataExport, ExportStatus
from exports.services import delete_export
from notifications.models import Notification
from tests.conftest import grant
from tests.exports.conftest import EVENTS

pytestmark = pytest.mark.django_db


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def says_deleted(response) -> bool:
    html = response.content.decode()
    return "This export was deleted" in html and 'href="/exports/"' in html


def test_the_drawers_link_to_a_deleted_export_explains_itself(
    api_as, exporter, request_export
) -> None:
    record_event(action=EventAction.LOGIN, app="tests", context={"username": "ana"})
    export = DataExport.objects.get(pk=request_export(api_as(exporter), EVENTS).json()["id"])
    link = Notification.objects.get(user=exporter, hyperlink_label="Download")
    assert link.hyperlink == f"/exports/{export.pk}/download/"
    assert browser(exporter).get(link.hyperlink).status_code == 200  # downloads while it lives
    delete_export(export=export)
    response = browser(exporter).get(link.hyperlink)
    assert response.status_code == 404
    assert says_deleted(response)
    assert "Download" not in response.content.decode().split("data-export-gone")[1]


def test_an_unknown_or_someone_elses_export_reads_the_same(
    api_as, exporter, nobody, request_export
) -> None:
    export = DataExport.objects.get(pk=request_export(api_as(exporter), EVENTS).json()["id"])
    other = grant(nobody, "exports.add_dataexport", "auditlog.view_event")
    unknown = browser(exporter).get(f"/exports/{uuid.uuid4()}/download/")
    theirs = browser(other).get(f"/exports/{export.pk}/download/")
    for response in (unknown, theirs):
        assert response.status_code == 404
        assert says_deleted(response)
    assert str(export.pk) not in theirs.content.decode()


def test_an_export_not_ready_yet_is_a_plain_404(exporter) -> None:
    from django.contrib.contenttypes.models import ContentType

    from auditlog.models import Event

    export = DataExport.objects.create(
        requested_by=exporter,
        content_type=ContentType.objects.get_for_model(Event),
        query_params={},
        status=ExportStatus.QUEUED,
    )
    response = browser(exporter).get(f"/exports/{export.pk}/download/")
    assert response.status_code == 404
    assert not says_deleted(response)
