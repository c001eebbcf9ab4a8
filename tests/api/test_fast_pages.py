"""The event list's fast pages: rows as tuples, JSON columns embedded as stored, the same JSON
as DRF's field-by-field rendering (keys, values, order), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import Count, Value
from django.db.models.functions import Cast, TruncHour

from auditlog import compat, paging
from auditlog.models import Event, EventAction, EventJSONField
from auditlog.representation import EMPTY_OBJECT, event_rows, rows_json

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"


def ordered(value: Any) -> str:
    """A JSON value written with its keys in their order (dict equality ignores order)."""
    return json.dumps(value, ensure_ascii=False)


def drf_json(event: Event) -> dict[str, Any]:
    """DRF's field-by-field rendering of the event, with compat's action mapping and ``{}``
    for a null JSON field (DRF's generic rendering skips a field's own for null): what the
    list answered before the fast pages."""
    from rest_framework import serializers as drf

    from auditlog.api.serializers import EventSerializer

    serializer = EventSerializer(event)
    data = dict(drf.ModelSerializer.to_representation(serializer, event))
    data["action"], data["context"] = compat.action_for_client(event.action, data["context"])
    for name in ("user", "brand"):
        data[name] = {} if data[name] is None else data[name]
    return json.loads(json.dumps(data))


def varied_events() -> list[Event]:
    events = [
        Event.objects.create(
            action=EventAction.LOGIN,
            app="tests",
            client_ip="81.2.69.142",
            context={
                "zeta": 1,
                "alpha": {"b": [1, 2.5, None, True], "a": "é ü 漢字 \U0001f600"},
                "small": 1e-7,
                "quote": 'a "b" \\ c\n',
            },
            user={"pk": 5, "username": "jo", "email": "jo@example.com"},
        ),
        Event.objects.create(action="custom_x", app="t", user={}, context={}, brand={}),
        # An action of a newer release: answered as the target's, the stored one in context.
        Event.objects.create(action="user_created", app="t", context={"model": {"pk": 1}}),
        Event.objects.create(action="login_blocked", app="t", context={}),
    ]
    # JSON null in the columns (written past the model, as an old row may hold it).
    null = Cast(Value("null"), EventJSONField())
    Event.objects.filter(pk=events[1].pk).update(user=null, context=null, brand=null)
    # A time on a whole second: isoformat() then writes no microseconds.
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    Event.objects.filter(pk=events[3].pk).update(created=whole, expires=whole)
    return events


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_a_fast_page_is_the_json_drf_wrote(api_as, admin_user, settings, zone: str) -> None:
    settings.TIME_ZONE = zone
    varied_events()
    response = api_as(admin_user).get(EVENTS, {"page_size": 1000})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    expected = [drf_json(event) for event in Event.objects.order_by("-created", "-event_uuid")]
    assert len(results) == len(expected) >= 4
    for got, want in zip(results, expected, strict=True):
        assert ordered(got) == ordered(want)
    by_pk = {row["pk"]: row for row in results}
    mapped = [row for row in results if row["app"] == "t" and row["context"].get("model")]
    assert mapped[0]["action"] == "model_created"
    assert mapped[0]["context"][compat.NEWER_ACTION_KEY] == "user_created"
    assert all(
        row["action"] in compat.TARGET_ACTIONS or row["action"].startswith("custom_")
        for row in by_pk.values()
    )
    nulls = [row for row in results if row["action"] == "custom_x"]
    assert nulls[0]["user"] == nulls[0]["context"] == nulls[0]["brand"] == {}
    if zone != "UTC":
        assert not results[0]["created"].endswith("Z")
    else:
        assert results[-1]["created"] == results[-1]["expires"] == "2026-01-02T03:04:05Z"


def test_the_json_columns_are_embedded_as_stored() -> None:
    varied_events()
    rows = rows_json(event_rows(Event.objects.order_by("-created", "-event_uuid")))
    plain = next(row for row in rows if row["action"] == "login")
    assert type(plain["context"]).__name__ == "Fragment"  # not decoded, not re-encoded
    nulls = next(row for row in rows if row["action"] == "custom_x")
    assert nulls["user"] is nulls["context"] is nulls["brand"] is EMPTY_OBJECT


def test_an_integer_beyond_64_bits_is_answered_exactly(api_as, admin_user) -> None:
    # Decoding the column (orjson, as the model does) would make it a float; embedded as
    # stored, it stays the integer that was recorded.
    Event.objects.create(action="custom_big", app="t", context={"big": 2**100 + 1})
    body = api_as(admin_user).get(EVENTS, {"action": "custom_big"}).content
    assert b'"big": 1267650600228229401496703205377' in body.replace(b'"big":1', b'"big": 1')
    assert json.loads(body)["results"][0]["context"]["big"] == 2**100 + 1


def test_indented_json_is_the_same_document(api_as, admin_user) -> None:
    varied_events()
    client = api_as(admin_user)
    compact = client.get(EVENTS, {"page_size": 1000})
    indented = client.get(EVENTS, {"page_size": 1000}, HTTP_ACCEPT="application/json; indent=2")
    assert indented.status_code == 200
    assert b'\n  "pagination"' in indented.content
    assert ordered(indented.json()) == ordered(compact.json())


def test_a_full_crawl_sees_every_event_once_with_deep_pages(
    api_as, admin_user, monkeypatch
) -> None:
    # Every page past the first is fetched keys first (on PostgreSQL), as far pages are.
    monkeypatch.setattr(paging, "DEFERRED_JOIN_OFFSET", 3)
    for index in range(11):
        Event.objects.create(action="custom_crawl", app="t", context={"n": index})
    Event.objects.create(action="user_created", app="t", context={})
    client = api_as(admin_user)
    seen: list[dict[str, Any]] = []
    page = 1
    while page:
        body = client.get(EVENTS, {"page_size": 3, "page": page}).json()
        seen += body["results"]
        page = body["pagination"]["next"]
    wanted = Event.objects.order_by("-created", "-event_uuid")
    assert len(seen) >= 12
    assert [row["pk"] for row in seen] == [str(event.pk) for event in wanted]
    assert [ordered(row) for row in seen] == [ordered(drf_json(event)) for event in wanted]


def test_the_fast_page_still_needs_the_view_permission(api_as, nobody) -> None:
    varied_events()
    assert api_as(nobody).get(EVENTS, {"page_size": 1000}).status_code == 403
    assert api_as(None).get(EVENTS).status_code in (401, 403)


def test_a_crawl_continues_after_the_last_row_it_was_shown(api_as, admin_user, monkeypatch) -> None:
    """Deep pages of a newest-first crawl continue from the previous page's last row (an
    index range, not a walk past the offset): an event written during the crawl does not
    shift the pages, so nothing is seen twice."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("deep pages are fetched keys first on PostgreSQL only")
    monkeypatch.setattr(paging, "DEFERRED_JOIN_OFFSET", 3)
    for index in range(12):
        Event.objects.create(action="custom_crawl", app="t", context={"n": index})
    wanted = [
        str(pk)
        for pk in Event.objects.order_by("-created", "-event_uuid").values_list("pk", flat=True)
    ]
    client = api_as(admin_user)
    seen: list[str] = []
    page = 1
    while page:
        body = client.get(EVENTS, {"page_size": 3, "page": page}).json()
        seen += [row["pk"] for row in body["results"]]
        page = body["pagination"]["next"]
        if page == 3:  # mid-crawl, a new event (newest first: an offset would shift by one)
            Event.objects.create(action="custom_late", app="t", context={})
    assert len(seen) == len(set(seen))
    assert [pk for pk in seen if pk in wanted] == wanted


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_the_volume_json_is_the_volume_serializers(api_as, admin_user, settings, zone) -> None:
    from auditlog.api.serializers import VolumeSerializer
    from auditlog.models import six_hour_buckets

    settings.TIME_ZONE = zone
    varied_events()
    body = api_as(admin_user).get(f"{EVENTS}volume/", {"history_days": 30}).json()
    hours = (
        Event.objects.annotate(hour=TruncHour("created", tzinfo=UTC))
        .values("hour", "action")
        .annotate(count=Count("*"))
        .order_by()
    )
    rows = compat.volume_for_client(six_hour_buckets(list(hours)))
    expected = VolumeSerializer(
        [row for row in rows if row["time"] >= rows[-1]["time"] - timedelta(days=31)], many=True
    ).data
    assert body
    assert ordered(body) == ordered(json.loads(json.dumps(expected)))
