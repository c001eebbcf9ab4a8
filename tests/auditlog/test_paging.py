"""Paging a big table: cheap counts, an exact next page, fast deep pages."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from auditlog import paging
from auditlog.bulk import write_events
from auditlog.models import Event
from auditlog.paging import LargeTablePaginator

pytestmark = pytest.mark.django_db


def many(count: int, action: str = "login") -> None:
    now = timezone.now()
    rng = random.Random(1)
    write_events(
        Event(
            event_uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            action=action,
            app="tests",
            created=now - timedelta(seconds=index),
            expires=now + timedelta(days=1),
            brand={},
        )
        for index in range(count)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Event._meta.db_table}")


def test_small_results_are_counted_exactly() -> None:
    many(30)
    paginator = LargeTablePaginator(Event.objects.latest_first(), 10)
    assert paginator.count == 30
    assert paginator.count_is_estimate is False
    page = paginator.page(2)
    assert page.has_next() and page.start_index() == 11 and page.end_index() == 20


def test_next_comes_from_the_rows_not_from_the_count(monkeypatch) -> None:
    many(25)
    monkeypatch.setattr(paging, "EXACT_COUNT_LIMIT", 5)
    monkeypatch.setattr(paging, "planner_estimate", lambda queryset: 7)  # a bad estimate
    paginator = LargeTablePaginator(Event.objects.latest_first(), 10)
    first = paginator.page(1)
    assert first.has_next()
    assert paginator.num_pages >= 2
    last = LargeTablePaginator(Event.objects.latest_first(), 10).page(3)
    assert not last.has_next()
    assert last.paginator.count == 25  # the end was seen: the count is exact again
    assert last.paginator.count_is_estimate is False
    with pytest.raises(paging.EmptyPage):
        LargeTablePaginator(Event.objects.latest_first(), 10).page(4)


def test_every_row_is_seen_once_when_paging_to_the_end(monkeypatch) -> None:
    many(47)
    monkeypatch.setattr(paging, "EXACT_COUNT_LIMIT", 5)
    monkeypatch.setattr(paging, "planner_estimate", lambda queryset: 1000)
    seen, number = [], 1
    while True:
        page = LargeTablePaginator(Event.objects.latest_first(), 10).page(number)
        seen.extend(event.pk for event in page.object_list)
        if not page.has_next():
            break
        number += 1
    assert len(seen) == len(set(seen)) == 47


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's"
)
def test_a_large_table_is_estimated_by_the_planner(monkeypatch) -> None:
    monkeypatch.setattr(paging, "EXACT_COUNT_LIMIT", 1000)
    many(3000)
    paginator = LargeTablePaginator(Event.objects.filter(action="login").latest_first(), 100)
    count = paginator.count
    assert paginator.count_is_estimate is True
    assert abs(count - 3000) < 600
    page = paginator.page(1)
    assert page.has_next() and paginator.count_is_estimate is True


def test_deep_pages_match_plain_offsets(monkeypatch) -> None:
    many(60)
    monkeypatch.setattr(paging, "DEFERRED_JOIN_OFFSET", 10)
    queryset = Event.objects.latest_first()
    expected = list(queryset.values_list("pk", flat=True)[40:50])
    page = LargeTablePaginator(queryset, 10).page(5)
    assert [event.pk for event in page.object_list] == expected


def test_a_page_number_past_any_table_is_empty_not_an_error() -> None:
    many(3)
    with pytest.raises(paging.EmptyPage):
        LargeTablePaginator(Event.objects.latest_first(), 100).page(10**20)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's"
)
def test_the_whole_large_table_is_counted_from_its_statistics_alone(monkeypatch) -> None:
    monkeypatch.setattr(paging, "EXACT_COUNT_LIMIT", 1000)
    monkeypatch.setattr(paging, "planner_estimate", lambda queryset: pytest.fail("EXPLAIN"))
    many(3000)
    paginator = LargeTablePaginator(Event.objects.latest_first(), 100)
    assert paginator.count_is_estimate is False
    assert abs(paginator.count - 3000) < 300
    assert paginator.count_is_estimate is True
