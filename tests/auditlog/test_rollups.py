"""Hourly roll-ups: the chart and the map read them when a search only names actions, and
they agree with the events, through sealing, retention and erasure, on both databases."""

from __future__ import annotations

from datetime import UTC, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import F
from django.utils import timezone

from auditlog import chain, rollups
from auditlog.bulk import write_events
from auditlog.models import Event, EventChainPending, EventRollup, EventVolume
from auditlog.retention import delete_expired_events
from auditlog.services import record_event

pytestmark = pytest.mark.django_db

BERLIN = {"lat": 52.52, "long": 13.405, "country": "DE", "city": "Berlin"}
LONDON = {"lat": 51.5142, "long": -0.0931, "country": "GB", "city": "London"}


def _write(action: str, count: int, geo: dict[str, Any] | None = None) -> list[Event]:
    context = {"geo": geo} if geo else {}
    return [record_event(action=action, app="tests", context=context) for _ in range(count)]


def _from_events(since: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events = Event.objects.all()
    places = sorted(events.geo_points(), key=lambda p: (p["lat"], p["long"]))
    return events.volume(since=since), places


def _from_rollups(since: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    counted, events = rollups.counted({}), Event.objects.all()
    places = rollups.places(rollups=counted, events=events)
    places = sorted(places, key=lambda p: (p["lat"], p["long"]))
    volume = rollups.volume(since=since, rollups=rollups.counted_volume({}), events=events)
    return volume, places


def _volume_is_the_places_summed() -> bool:
    """The chart's roll-up holds, per hour and action, the places' roll-ups summed."""
    summed: dict[tuple[Any, str], int] = {}
    for hour, action, count in EventRollup.objects.values_list("hour", "action", "count"):
        summed[(hour, action)] = summed.get((hour, action), 0) + count
    volume = {
        (hour, action): count
        for hour, action, count in EventVolume.objects.values_list("hour", "action", "count")
    }
    nonzero = {key: count for key, count in summed.items() if count}
    return bool(nonzero) and nonzero == {key: count for key, count in volume.items() if count}


def test_sealed_and_waiting_events_count_the_same_as_the_events() -> None:
    since = timezone.now() - timedelta(days=7)
    _write("login", 5, BERLIN)
    _write("login_failed", 3, LONDON)
    _write("logout", 2)
    chain.seal_pending()
    assert EventRollup.objects.filter(action="login", located=True).get().count == 5
    assert EventVolume.objects.filter(action="login").get().count == 5
    assert _volume_is_the_places_summed()
    _write("login", 4, LONDON)  # waiting to be sealed: counted from the queue
    assert EventChainPending.objects.exists()
    assert _from_rollups(since) == _from_events(since)
    chain.seal_pending()
    assert _from_rollups(since) == _from_events(since)
    london = [p for p in _from_rollups(since)[1] if p["lat"] == LONDON["lat"]]
    assert london == [{"lat": LONDON["lat"], "long": LONDON["long"], "count": 7}]


def test_hours_fold_into_the_same_six_hour_buckets_as_the_events() -> None:
    """Events spread over three days, at hours on and around the buckets' edges (00, 06, 12,
    18 UTC): the roll-ups (folded by the database on PostgreSQL) and the events agree."""
    start = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=3)
    offsets = [0, 5, 6, 11.99, 12, 17, 18, 23.5, 24, 29.9, 30, 47, 48, 60.5]
    write_events(
        Event(
            action=("login", "logout", "login_failed")[index % 3],
            app="tests",
            context={"imported": {"source": "tests"}},
            created=start + timedelta(hours=hours),
        )
        for index, hours in enumerate(offsets)
    )
    chain.seal_pending()
    since = start - timedelta(hours=1)
    volume, _places = _from_rollups(since)
    assert volume == _from_events(since)[0]
    assert len({row["time"] for row in volume}) == 9
    assert sum(row["count"] for row in volume) == len(offsets)


def test_retention_counts_deleted_events_out() -> None:
    since = timezone.now() - timedelta(days=7)
    old = _write("login", 6, BERLIN) + _write("logout", 2)
    _write("login", 3, BERLIN)
    chain.seal_pending()
    Event.objects.filter(pk__in=[e.pk for e in old]).update(
        expires=timezone.now() - timedelta(minutes=1), expiring=True
    )
    assert delete_expired_events(batch_size=3) == 8
    assert _volume_is_the_places_summed()
    assert EventVolume.objects.filter(action="logout").get().count == 0
    volume, places = _from_rollups(since)
    assert (volume, places) == _from_events(since)
    assert places == [{"lat": BERLIN["lat"], "long": BERLIN["long"], "count": 3}]
    assert not EventRollup.objects.filter(action="logout", count__gt=0).exists()


def test_the_chart_and_the_map_read_the_rollups_when_the_search_allows(admin_client) -> None:
    _write("login", 2, BERLIN)
    chain.seal_pending()
    url = "/api/v3/events/events/volume/"
    before = sum(row["count"] for row in admin_client.get(url, {"action": "login"}).json())
    # A roll-up that disagrees with the events shows which one a request read.
    EventVolume.objects.filter(action="login").update(count=F("count") + 38)
    volume = admin_client.get(url, {"action": "login"}).json()
    assert sum(row["count"] for row in volume) == before + 38
    EventRollup.objects.filter(action="login", located=True).update(count=30)
    points = admin_client.get("/events/map/", {"action": "login"}).json()["points"]
    assert [p["count"] for p in points] == [30]
    # A search the roll-ups cannot answer reads the events.
    search = {"search": 'action = "login"'}
    volume = admin_client.get(url, search).json()
    assert sum(row["count"] for row in volume) == before
    points = admin_client.get("/events/map/", search).json()["points"]
    assert [p["count"] for p in points] == [2]
    # authentik's action filter is a substring match, on the roll-ups as on the events.
    volume = admin_client.get(url, {"action": "login_fail"}).json()
    assert sum(row["count"] for row in volume) == 0
    volume = admin_client.get(url, {"action": "ogi"}).json()
    assert sum(row["count"] for row in volume) == before + 38
    answer = admin_client.get(url, {"actions": "no_such_action"})
    assert answer.status_code == 400


def test_the_migration_counts_what_was_sealed_before_it() -> None:
    _write("login", 3, BERLIN)
    _write("logout", 1)
    chain.seal_pending()
    expected = sorted(EventRollup.objects.values_list("hour", "action", "lat", "long", "count"))
    EventRollup.objects.all().delete()
    migration = __import__("auditlog.migrations.0011_event_rollups", fromlist=["backfill"])
    # What backfill uses of a schema editor (SQLite's refuses to open inside a test's
    # transaction).
    editor = SimpleNamespace(connection=connection, execute=lambda sql: _execute(sql))
    migration.backfill(apps, editor)
    found = sorted(EventRollup.objects.values_list("hour", "action", "lat", "long", "count"))
    assert found == expected


def test_the_volume_migration_sums_the_places_rollups() -> None:
    _write("login", 3, BERLIN)
    _write("login", 2, LONDON)
    _write("logout", 1)
    chain.seal_pending()
    expected = sorted(EventVolume.objects.values_list("hour", "action", "count"))
    assert sorted(count for *_key, count in expected) == [1, 5]
    EventVolume.objects.all().delete()
    migration = __import__("auditlog.migrations.0013_event_volume", fromlist=["backfill"])
    migration.backfill(apps, SimpleNamespace(connection=connection, execute=_execute))
    assert sorted(EventVolume.objects.values_list("hour", "action", "count")) == expected


def _execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def test_the_map_counts_the_last_days_from_the_rollups(admin_client) -> None:
    old = _write("login", 3, BERLIN)
    _write("login", 2, BERLIN)
    chain.seal_pending()
    ten_days_ago = timezone.now() - timedelta(days=10)
    Event.objects.filter(pk__in=[e.pk for e in old]).update(created=ten_days_ago)
    # The roll-ups keep the hour each event was sealed into: move those three back too.
    moved = EventRollup.objects.filter(action="login", located=True).get()
    moved.count = 2
    moved.save()
    EventRollup.objects.create(
        hour=ten_days_ago.replace(minute=0, second=0, microsecond=0),
        action="login",
        located=True,
        lat=BERLIN["lat"],
        long=BERLIN["long"],
        count=3,
    )

    def counts(**params: object) -> list[int]:
        answer = admin_client.get("/events/map/", params)
        assert answer.status_code == 200, answer.content
        return [p["count"] for p in answer.json()["points"]]

    assert counts() == [5]
    assert counts(history_days=7) == [2]
    assert counts(history_days=30) == [5]
    # From the events when the search is not the roll-ups' (the same answer).
    assert counts(history_days=7, search='action = "login"') == [2]
    for bad in ("0", "91", "x", "٣"):
        answer = admin_client.get("/events/map/", {"history_days": bad})
        assert answer.status_code == 400
        assert "history_days" in answer.json()["detail"]
