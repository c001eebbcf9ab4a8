"""``/api/v3/events/notifications/``: each user sees, reads and clears only their own."""

from __future__ import annotations

import uuid

import pytest

from auditlog.services import record_event
from notifications.models import Notification

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/api/v3/events/notifications/"


@pytest.fixture
def mine(admin_user) -> list[Notification]:
    event = record_event(action="export_done", app="tests", context={"message": "x"})
    return [
        Notification.objects.create(
            user=admin_user, body="first", event=event, hyperlink="/x/", hyperlink_label="Download"
        ),
        Notification.objects.create(user=admin_user, body="second", severity="alert"),
    ]


@pytest.fixture
def theirs(nobody) -> Notification:
    return Notification.objects.create(user=nobody, body="private")


def test_a_user_lists_only_their_own(api_as, admin_user, mine, theirs) -> None:
    body = api_as(admin_user).get(NOTIFICATIONS).json()
    assert {row["body"] for row in body["results"]} == {"first", "second"}
    row = next(row for row in body["results"] if row["body"] == "first")
    assert set(row) == {
        "pk",
        "severity",
        "body",
        "hyperlink",
        "hyperlink_label",
        "created",
        "event",
        "seen",
    }
    assert row["hyperlink_label"] == "Download"
    assert row["event"]["action"] == "custom_export_done"
    assert body["results"][0]["body"] == "second"  # newest first


def test_someone_elses_notification_is_a_404(api_as, admin_user, theirs) -> None:
    client = api_as(admin_user)
    url = f"{NOTIFICATIONS}{theirs.pk}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"seen": True}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.seen is False


def test_marking_one_read(api_as, admin_user, mine) -> None:
    response = api_as(admin_user).patch(
        f"{NOTIFICATIONS}{mine[0].pk}/", {"seen": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["seen"] is True
    mine[0].refresh_from_db()
    assert mine[0].seen is True


def test_body_and_severity_cannot_be_rewritten(api_as, admin_user, mine) -> None:
    api_as(admin_user).patch(
        f"{NOTIFICATIONS}{mine[0].pk}/", {"body": "forged", "severity": "alert"}, format="json"
    )
    mine[0].refresh_from_db()
    assert mine[0].body == "first" and mine[0].severity == "notice"


def test_deleting_one(api_as, admin_user, mine) -> None:
    assert api_as(admin_user).delete(f"{NOTIFICATIONS}{mine[1].pk}/").status_code == 204
    assert not Notification.objects.filter(pk=mine[1].pk).exists()


def test_mark_all_seen_touches_only_my_notifications(api_as, admin_user, mine, theirs) -> None:
    response = api_as(admin_user).post(f"{NOTIFICATIONS}mark_all_seen/")
    assert response.status_code == 204
    assert not Notification.objects.filter(user=admin_user, seen=False).exists()
    theirs.refresh_from_db()
    assert theirs.seen is False


def test_filters(api_as, admin_user, mine) -> None:
    client = api_as(admin_user)
    assert [
        row["body"] for row in client.get(NOTIFICATIONS, {"severity": "alert"}).json()["results"]
    ] == ["second"]
    client.patch(f"{NOTIFICATIONS}{mine[0].pk}/", {"seen": True}, format="json")
    assert [
        row["body"] for row in client.get(NOTIFICATIONS, {"seen": "false"}).json()["results"]
    ] == ["second"]
    assert client.get(NOTIFICATIONS, {"event": str(uuid.uuid4())}).json()["results"] == []


def test_anonymous_requests_are_refused(db) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get(NOTIFICATIONS).status_code == 403
    assert APIClient().post(f"{NOTIFICATIONS}mark_all_seen/").status_code == 403


def test_a_user_without_any_permission_still_reads_their_own(api_as, nobody, theirs) -> None:
    body = api_as(nobody).get(NOTIFICATIONS).json()
    assert [row["body"] for row in body["results"]] == ["private"]
    assert api_as(nobody).post(NOTIFICATIONS, {"body": "x"}, format="json").status_code == 405
