"""Paging a big table: cheap counts, an exact next page, fast deep pages."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from auditlog import paging
from auditlog.bulk import write_events
from auditlog.models import Alternative, Event
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


# --- A filter of a few values, walked one value at a time ------------------------------------


def mixed(count: int) -> None:
    """Events of several actions and users, many sharing a creation time (the pk breaks ties),
    some naming a user in their context as well as being by them."""
    from directory.models import User

    ana = User.objects.create_user("ana", "ana@example.com", "correct-password-1")
    now = timezone.now()
    rng = random.Random(7)
    actions = ["login", "login_failed", "logout", "model_updated", "custom_login_seen"]
    names = ["ana", "bo", "cy"]

    def context() -> dict:
        draw = rng.random()
        if draw < 0.3:
            return {"username": rng.choice(names)}
        if draw < 0.5:  # a change of ana, or of something else with her pk
            model_name = rng.choice(["user", "group"])
            return {"model": {"app": "directory", "model_name": model_name, "pk": ana.pk}}
        return {}

    write_events(
        Event(
            event_uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            action=rng.choice(actions),
            app="tests",
            user={"pk": 1, "username": rng.choice(names)},
            context=context(),
            created=now - timedelta(seconds=index // 3),
            expires=now + timedelta(days=1),
            brand={},
        )
        for index in range(count)
    )


def plain(queryset):
    """The same rows and order, without the alternatives (one query, the planner's way)."""
    return Event.objects.filter(pk__in=queryset.values("pk")).order_by(*queryset.query.order_by)


def every_page(queryset, per_page: int) -> list[list]:
    pages, number = [], 1
    while True:
        page = LargeTablePaginator(queryset, per_page).page(number)
        pages.append([event.pk for event in page.object_list])
        if not page.has_next():
            return pages
        number += 1


@pytest.mark.parametrize("order", [("-created", "-event_uuid"), ("created", "event_uuid")])
@pytest.mark.parametrize(
    "params",
    [
        {"action": "login"},
        {"username": "ana"},
        {"actions": ["login", "logout"]},
        # Two filters of alternatives: one is walked, the other filters each walk.
        {"username": "bo", "actions": ["login", "logout"]},
        {"action": "log", "search": 'app = "tests"'},
    ],
)
def test_pages_of_walked_alternatives_are_the_plain_querys_pages(monkeypatch, order, params):
    from auditlog.listing import EventFilter
    from auditlog.search import EventSearchSchema, apply_search

    mixed(300)
    queryset = apply_search(Event.objects.all(), params.pop("search", ""), EventSearchSchema)
    queryset = EventFilter(data=params, queryset=queryset).qs.order_by(*order)
    assert len(paging.walks_of(queryset)) > 1  # walked value by value
    expected = list(plain(queryset).values_list("pk", flat=True))
    assert 14 < len(expected) < 300
    pages = every_page(queryset, 7)
    assert [pk for page in pages for pk in page] == expected
    # Deep pages (from the offset where keys come first) and a crawl continuing from marks.
    monkeypatch.setattr(paging, "DEFERRED_JOIN_OFFSET", 14)
    assert [pk for page in every_page(queryset, 7) for pk in page] == expected


def test_each_walk_reads_no_more_than_the_page_needs() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from auditlog.listing import EventFilter

    mixed(150)
    queryset = EventFilter(data={"action": "login"}, queryset=Event.objects.all()).qs
    queryset = queryset.latest_first()
    walks = paging.walks_of(queryset)
    # login, login_failed (with login_blocked, stored as newer releases write it) and the
    # custom actions containing "login".
    assert len(walks) == 4
    with CaptureQueriesContext(connection) as queries:
        page = LargeTablePaginator(queryset, 10).page(2)
    # A walk each (one UNION on PostgreSQL), for the first 2 pages and 1 row.
    walked = " ".join(query["sql"] for query in queries)
    assert walked.count("LIMIT 21") == len(walks)
    assert len(page.object_list) == 10


def test_alternatives_are_forgotten_where_rows_could_fall_outside_them() -> None:
    mixed(30)
    logins = Event.objects.matching_any(
        Alternative.equal("action", "login"), Alternative(also=Q(action="logout"))
    )
    assert len(logins.filter(app="tests").latest_first().alternatives()) == 2
    assert len(logins.values_list("pk", "created").alternatives()) == 2
    assert (logins | Event.objects.filter(action="model_updated")).alternatives() == ()
    assert logins.union(Event.objects.all()).alternatives() == ()
    # Fewer walks win when two filters each know alternatives (either is correct).
    both = logins.matching_any(*(Alternative.equal("app", app) for app in ("tests", "x", "y")))
    assert len(both.alternatives()) == 2
    assert paging.walks_of(logins) == ()  # not in a time order: nothing to merge by
    # A walk leaves out the alternatives' OR (each walk implies it), and nothing else.
    narrowed = logins.filter(app="tests").exclude(client_ip="10.0.0.1")
    assert set(narrowed.for_walks()) == set(Event.objects.filter(app="tests"))
    assert "login" not in str(narrowed.for_walks().query)
    assert paging.walks_of(logins.latest_first()[:5]) == ()


def test_deep_pages_of_a_table_without_a_creation_time(monkeypatch) -> None:
    """The paginator serves every list (users, tokens, exports...), not only events: its
    keys-first deep pages must not ask them for a ``created``."""
    from directory.models import User

    for index in range(25):
        User.objects.create_user(f"user-{index:02}", f"u{index}@example.com", "pw-pw-pw-pw-1")
    monkeypatch.setattr(paging, "DEFERRED_JOIN_OFFSET", 10)
    queryset = User.objects.order_by("username")
    expected = list(queryset.values_list("pk", flat=True)[10:20])
    page = LargeTablePaginator(queryset, 10).page(2)
    assert [user.pk for user in page.object_list] == expected
