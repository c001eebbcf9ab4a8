"""``/events/chart/``: the volume chart's data covers the whole period of the page's search and
filters, in buckets that fit it, and refuses what the page refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from auditlog.charts import bucket_for
from auditlog.models import Event, EventAction
from auditlog.presentation import PALETTE, all_action_colors
from directory.models import User

pytestmark = pytest.mark.django_db


def event_on(action: str, when: datetime) -> None:
    event = Event(action=action, app="t")
    event.created = when
    event._keep_created = True  # type: ignore[attr-defined]
    event.save()


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_chart_covers_the_searched_period_in_fitting_buckets(auditor: User) -> None:
    start = datetime(2026, 9, 1, 13, 30, tzinfo=UTC)
    event_on(EventAction.LOGIN, start)
    event_on(EventAction.LOGIN, start + timedelta(days=40, hours=2))
    event_on(EventAction.USER_WRITE, start + timedelta(days=40, hours=5))
    data = signed_in(auditor).get("/events/chart/", {"search": 'app = "t"'}).json()
    assert data["start"] == "2026-09-01T00:00:00Z"
    assert data["bucket_seconds"] == 86400 and data["buckets"] == 41
    assert data["rows"] == [
        {"action": "login", "time": "2026-09-01T00:00:00Z", "count": 1},
        {"action": "login", "time": "2026-10-11T00:00:00Z", "count": 1},
        {"action": "user_write", "time": "2026-10-11T00:00:00Z", "count": 1},
    ]
    searched = signed_in(auditor).get("/events/chart/", {"actions": "user_write"}).json()
    assert searched["bucket_seconds"] == 3600 and searched["buckets"] == 1
    assert [row["action"] for row in searched["rows"]] == ["user_write"]


def test_buckets_grow_with_the_period() -> None:
    assert [
        bucket_for(timedelta(days=days)).total_seconds() / 3600 for days in (1, 10, 60, 400)
    ] == [
        1,
        6,
        24,
        168,
    ]


def test_a_bad_search_is_a_400_and_readers_only(auditor: User, nobody: User) -> None:
    bad = signed_in(auditor).get("/events/chart/", {"search": "nosuch = 1"})
    assert bad.status_code == 400 and "nosuch" in bad.json()["detail"]
    assert signed_in(nobody).get("/events/chart/").status_code == 403
    assert signed_in(auditor).get("/events/chart/", {"search": 'app = "none"'}).json()["rows"] == []


def test_the_palette_colours_are_well_separated_and_the_common_types_have_their_own() -> None:
    def lab(colour: str) -> tuple[float, float, float]:
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        r, g, b = (((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in (r, g, b))
        x = (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047
        y = r * 0.2126 + g * 0.7152 + b * 0.0722
        z = (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883
        f = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in (x, y, z)]
        return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])

    distances = [
        sum((p - q) ** 2 for p, q in zip(lab(a), lab(b), strict=True)) ** 0.5
        for i, a in enumerate(PALETTE)
        for b in PALETTE[i + 1 :]
    ]
    assert min(distances) > 15
    colours = all_action_colors()
    common = [EventAction.SYSTEM_TASK_EXECUTION, EventAction.USER_WRITE, EventAction.LOGIN]
    common += [EventAction.LOGIN_FAILED, EventAction.MODEL_UPDATED, EventAction.MODEL_CREATED]
    assert len({colours[action] for action in common}) == len(common)
