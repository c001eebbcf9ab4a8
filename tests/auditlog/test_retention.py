"""Retention: the duration format, expiry, and batched deletion."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from auditlog.models import Event
from auditlog.retention import delete_expired_events
from auditlog.services import record_event
from auditlog.tasks import delete_expired_events as delete_task
from directory.models import User
from notifications.models import Notification
from project.durations import DurationFormatError, parse_duration
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("days=365", timedelta(days=365)),
        ("days=365;hours=1", timedelta(days=365, hours=1)),
        ("Weeks=3", timedelta(weeks=3)),
        ("hours=1.5", timedelta(minutes=90)),
        ("minutes=1;unknown=4", timedelta(minutes=1)),
    ],
)
def test_the_authentik_duration_format_is_understood(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24d", "days", "days=x", "foo=1", "days=-1"])
def test_invalid_durations_are_refused_with_the_format(text: str) -> None:
    with pytest.raises(DurationFormatError):
        parse_duration(text)


def test_the_message_names_the_expected_format() -> None:
    with pytest.raises(
        DurationFormatError, match=r"24d is not in the correct format of 'hours=3;minutes=1'\."
    ):
        parse_duration("24d")


def test_a_bad_retention_fails_at_start_up_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={"EVENT_RETENTION": "forever", "PATH": "/usr/bin:/bin", "DATA_DIR": str(REPO / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert (
        "EVENT_RETENTION: forever is not in the correct format of 'hours=3;minutes=1'."
        in result.stderr
    )


def _event(expires_in: timedelta) -> Event:
    event = record_event(action="foo", app="tests")
    Event.objects.filter(pk=event.pk).update(expires=timezone.now() + expires_in)
    return event


@pytest.mark.django_db
def test_only_expired_events_are_deleted_in_batches() -> None:
    expired = [_event(-timedelta(minutes=1)) for _ in range(5)]
    kept = _event(timedelta(days=1))
    never = _event(-timedelta(days=1))
    Event.objects.filter(pk=never.pk).update(expiring=False)
    batches: list[int] = []
    assert delete_expired_events(batch_size=2, progress=batches.append) == 5
    assert batches == [2, 2, 1]
    remaining = set(Event.objects.values_list("pk", flat=True))
    assert {kept.pk, never.pk} <= remaining
    assert not remaining & {event.pk for event in expired}


@pytest.mark.django_db
def test_notifications_of_deleted_events_survive_without_their_event() -> None:
    user = User.objects.create_user("ana")
    event = _event(-timedelta(minutes=1))
    notification = Notification.objects.create(user=user, body="hi", event=event)
    delete_expired_events()
    notification.refresh_from_db()
    assert notification.event_id is None


@pytest.mark.django_db
def test_the_command_reports_how_many_it_deleted() -> None:
    for _ in range(3):
        _event(-timedelta(minutes=1))
    out = StringIO()
    call_command("delete_expired_events", stdout=out, stderr=StringIO())
    assert out.getvalue().strip() == "Deleted 3 expired events."
    assert Event.objects.expired().count() == 0


@pytest.mark.django_db
def test_the_scheduled_task_deletes_expired_events() -> None:
    _event(-timedelta(minutes=1))
    assert delete_task.delay().get(disable_sync_subtasks=False) == 1


def test_the_scheduler_runs_retention_every_five_minutes() -> None:
    from django.conf import settings

    schedule = settings.CELERY_BEAT_SCHEDULE["delete-expired-events"]
    assert schedule["task"] == "auditlog.tasks.delete_expired_events"
    assert schedule["schedule"].minute == set(range(2, 60, 5))
