"""A failing destination: backoff without skipping, its health in the receiver's words, one
system_task_exception event (which the default rule sends to the administrators) once it has
failed longer than the threshold, not one per retry; and sealed events wake delivery."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.services import record_event
from notifications.models import Notification
from streams import services
from streams.models import Destination, Transport
from tests.notifications.conftest import commit  # noqa: F401 (a fixture)
from tests.notifications.test_default_rules import defaults  # noqa: F401 (a fixture)
from tests.streams.conftest import deliver_all, make_destination
from tests.streams.receivers import http_receiver

pytestmark = pytest.mark.django_db


def test_retries_back_off_exponentially_and_wait_their_turn(make_events, settings) -> None:
    settings.STREAMS_RETRY_BASE = timedelta(seconds=10)
    settings.STREAMS_RETRY_MAX = timedelta(seconds=25)
    make_events(1)
    destination = make_destination(transport=Transport.SYSLOG_TCP, host="127.0.0.1", port=1)
    delays = []
    for _ in range(3):
        before = timezone.now()
        assert services.deliver(destination.pk).error
        destination.refresh_from_db()
        delays.append(round((destination.retry_at - before).total_seconds()))
        # Not yet due: nothing is attempted.
        assert not services.deliver(destination.pk).claimed
        assert destination.pk not in services.deliverable_ids()
        Destination.objects.filter(pk=destination.pk).update(retry_at=None)
    assert delays == [10, 20, 25]
    destination.refresh_from_db()
    assert destination.attempts == 3 and destination.position == 0


def test_a_destination_failing_past_the_threshold_is_reported_once(
    make_events,
    settings,
    defaults,  # noqa: F811
    admin_user,
    commit,  # noqa: F811
) -> None:
    settings.STREAMS_FAILURE_THRESHOLD = timedelta(hours=1)
    make_events(1)
    with http_receiver() as receiver:
        receiver.status = 503
        destination = make_destination(transport=Transport.HTTP, url=receiver.url)
        deliver_all(destination)
        deliver_all(destination)
        assert not Event.objects.filter(action=EventAction.SYSTEM_TASK_EXCEPTION).exists()
        Destination.objects.filter(pk=destination.pk).update(
            failing_since=timezone.now() - timedelta(hours=2)
        )
        with commit():
            for _ in range(3):
                deliver_all(destination)
    (reported,) = Event.objects.filter(action=EventAction.SYSTEM_TASK_EXCEPTION)
    assert reported.app == "streams"
    assert reported.context["destination"] == "siem"
    assert reported.context["error"].startswith("HTTP 503")
    notification = Notification.objects.get(user=admin_user)
    assert notification.severity == "alert" and "Stream siem has been failing" in notification.body
    destination.refresh_from_db()
    assert destination.failure_reported and destination.attempts >= 5


def test_success_clears_the_failure(make_events, settings) -> None:
    settings.STREAMS_FAILURE_THRESHOLD = timedelta(0)
    make_events(1)
    with http_receiver() as receiver:
        receiver.status = 500
        destination = make_destination(transport=Transport.HTTP, url=receiver.url)
        deliver_all(destination)
        destination.refresh_from_db()
        assert destination.failure_reported and destination.failing_since
        receiver.status = 200
        deliver_all(destination)
    destination.refresh_from_db()
    assert (destination.last_error, destination.failing_since, destination.failure_reported) == (
        "",
        None,
        False,
    )


def test_sealed_events_wake_delivery(make_events, commit, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "woken.jsonl"
    make_destination(transport=Transport.FILE, path=str(path))
    with commit():
        pk = record_event(action=EventAction.LOGIN, app="tests").event_uuid
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert str(pk) in [r["pk"] for r in records]


def test_a_format_that_no_longer_exists_shows_on_health(make_events, tmp_path: Path) -> None:
    make_events(1)
    destination = make_destination(transport=Transport.FILE, path=str(tmp_path / "f.jsonl"))
    Destination.objects.filter(pk=destination.pk).update(format="retired")
    run = services.deliver(destination.pk)
    destination.refresh_from_db()
    assert 'format or filter no longer works: Unknown format "retired"' in destination.last_error
    assert run.error == destination.last_error
    assert destination.position == 0 and destination.lease_holder == ""


def test_the_schedule_queues_every_destination_that_may_send(
    make_events, settings, tmp_path: Path
) -> None:
    from project import celery_app
    from streams.tasks import deliver_streams

    schedule = settings.CELERY_BEAT_SCHEDULE["deliver-streams"]
    assert schedule["task"] == deliver_streams.name and deliver_streams.name in celery_app.tasks
    make_events(2)
    ready = make_destination(name="ready", transport=Transport.FILE, path=str(tmp_path / "r"))
    make_destination(name="paused", transport=Transport.FILE, paused=True)
    waiting = make_destination(name="waiting", transport=Transport.FILE)
    Destination.objects.filter(pk=waiting.pk).update(retry_at=timezone.now() + timedelta(minutes=1))
    assert deliver_streams() == 1  # run eagerly here, as a worker would
    assert Destination.objects.get(pk=ready.pk).events_sent == 2
    assert Destination.objects.get(name="paused").events_sent == 0
    assert Destination.objects.get(pk=waiting.pk).events_sent == 0


def test_the_lag_count_stops_at_its_limit(make_events, monkeypatch, api_as, admin_user) -> None:
    make_events(5)
    destination = make_destination(transport=Transport.FILE)
    assert services.health(destination).as_json()["lag_events_exact"] is True
    monkeypatch.setattr(services, "LAG_COUNT_LIMIT", 3)
    health = api_as(admin_user).get(f"/api/v3/streams/destinations/{destination.pk}/health/")
    assert (health.json()["lag_events"], health.json()["lag_events_exact"]) == (3, False)
