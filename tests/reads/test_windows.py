"""Browsing does not flood the log: the same read by the same reader within the window is one
event, and its repeats one summary once the window is over; nothing written changes, no read is
lost, and reading the read events does not feed itself."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction

from auditlog import reads
from auditlog.models import Event
from auditlog.tasks import flush_reads
from tests.exports.conftest import EVENTS
from tests.reads.conftest import ADDRESS, read_events

# The summaries are written outside any transaction (a rollback would lose the counts).
pytestmark = pytest.mark.django_db(transaction=True)

SEARCH = {"search": 'action = "login"', "ordering": "-created"}


def total_reads(**context: object) -> int:
    """The number of reads the events stand for (the sum of their counts)."""
    return sum(event.context["count"] for event in read_events(**context))


def test_the_same_search_within_a_minute_is_one_event_and_then_one_summary(
    api_as, auditor, clock
) -> None:
    client = api_as(auditor)
    for _ in range(3):
        client.get(EVENTS, SEARCH, REMOTE_ADDR=ADDRESS)
        clock(15)
    [first] = read_events(read="search")
    assert first.context["count"] == 1
    sealed = (first.pk, dict(first.context))

    clock(120)  # the window is over: the next read writes the summary, then its own event
    client.get(EVENTS, SEARCH, REMOTE_ADDR=ADDRESS)
    first_again, summary, after = read_events(read="search")
    assert (first_again.pk, first_again.context) == sealed  # the first is never changed
    assert summary.context["count"] == 2
    assert summary.context["summary_of"] == str(first.pk)
    assert summary.context["search"] == SEARCH["search"]
    assert summary.context["window_start"] < summary.context["window_end"]
    assert (summary.user["username"], summary.client_ip) == ("auditor", ADDRESS)
    assert summary.context["http_request"]["path"] == EVENTS
    assert after.context["count"] == 1 and "summary_of" not in after.context
    assert total_reads(read="search") == 4


def test_a_different_query_filter_order_reader_or_address_is_another_event(
    api_as, auditor, admin_user, clock
) -> None:
    client = api_as(auditor)
    client.get(EVENTS, SEARCH)
    client.get(EVENTS, {**SEARCH, "search": 'action = "logout"'})
    client.get(EVENTS, {**SEARCH, "username": "ana"})
    client.get(EVENTS, {**SEARCH, "ordering": "created"})
    client.get(EVENTS, SEARCH, REMOTE_ADDR=ADDRESS)
    api_as(admin_user).get(EVENTS, SEARCH)
    assert len(read_events(read="search")) == 6


def test_paging_through_one_search_like_elastic_is_one_read_per_interval(
    api_as, auditor, clock
) -> None:
    Event.objects.bulk_create([Event(action="login", app="tests") for _ in range(5)])
    client = api_as(auditor)
    for _interval in range(2):  # the integration polls every page of the list, each interval
        for page in (1, 2, 3):
            assert client.get(EVENTS, {"page": page, "page_size": 2}).status_code == 200
        clock(61)
    # The first interval's summary is due two minutes after its start: the task writes it.
    assert flush_reads.delay().get(disable_sync_subtasks=False) == 1
    first, second, summary = read_events(read="search")
    assert (first.context["count"], second.context["count"]) == (1, 1)
    assert summary.context["count"] == 2 and summary.context["summary_of"] == str(first.pk)
    clock(180)
    assert flush_reads.delay().get(disable_sync_subtasks=False) == 1
    assert [e.context["count"] for e in read_events(read="search")] == [1, 1, 2, 2]
    assert total_reads(read="search") == 6


def test_reading_the_read_events_does_not_feed_itself(api_as, auditor, clock) -> None:
    client = api_as(auditor)
    before = set(Event.objects.values_list("pk", flat=True))
    for _ in range(10):  # a dashboard refreshing the read events every few seconds
        listed = client.get(EVENTS, {"search": 'app = "auditlog.reads"'}).json()
        clock(5)
    # One event for the whole minute: the list of read events shows only itself.
    assert [e["context"]["read"] for e in listed["results"]] == ["search"]
    assert Event.objects.exclude(pk__in=before).count() == 1
    clock(120)
    reads.flush_due()
    reads.flush_due()  # twice: the window is closed once
    [first, summary] = read_events()
    assert summary.context["count"] == 9
    # Writing read events is no model change, and the summary reads nothing.
    added = Event.objects.exclude(pk__in=before)
    assert sorted(added.values_list("pk", flat=True)) == sorted([first.pk, summary.pk])


def test_a_repeat_that_arrives_as_its_window_closes_is_not_lost(api_as, auditor, clock) -> None:
    client = api_as(auditor)
    client.get(EVENTS, SEARCH)
    client.get(EVENTS, SEARCH)  # counted in the window
    [window] = [cache.get(key) for key in _window_keys()]
    # A flusher closes the window while a reader still believes it open (the reader's clock
    # lags): the reader's count lands on a closed window, so it writes its own event.
    assert reads._flush_bucket(window["start"] // reads._window()) == 1
    client.get(EVENTS, SEARCH)
    assert [e.context["count"] for e in read_events()] == [1, 1, 1]
    assert total_reads() == 3


def test_a_lost_counter_writes_the_read_rather_than_dropping_it(api_as, auditor, clock) -> None:
    client = api_as(auditor)
    client.get(EVENTS, SEARCH)
    [window] = [cache.get(key) for key in _window_keys()]
    cache.delete(reads._count_key(window["digest"], window["start"]))  # evicted
    client.get(EVENTS, SEARCH)
    assert total_reads() == 2


def _window_keys() -> list[str]:
    now = reads._micros(reads.clock())
    bucket = f"{reads._PREFIX}bucket:{now // reads._window()}"
    return [f"{bucket}:{index}" for index in range(1, int(cache.get(bucket) or 0) + 1)]


def test_a_summary_written_during_someone_elses_read_is_the_first_readers(
    api_as, auditor, admin_user, clock
) -> None:
    client = api_as(auditor)
    client.get(EVENTS, SEARCH, REMOTE_ADDR=ADDRESS)
    client.get(EVENTS, SEARCH, REMOTE_ADDR=ADDRESS)
    clock(180)
    api_as(admin_user).get(EVENTS, {"search": "something else"})  # its read flushes the window
    first, summary, other = read_events()
    assert summary.context["summary_of"] == str(first.pk)
    assert (summary.user["username"], summary.client_ip) == ("auditor", ADDRESS)
    assert summary.context["http_request"] == first.context["http_request"]
    assert other.user["username"] == "admin" and other.context["search"] == "something else"


def test_no_summary_is_written_inside_a_transaction(api_as, auditor, clock) -> None:
    client = api_as(auditor)
    client.get(EVENTS, SEARCH)
    client.get(EVENTS, SEARCH)
    clock(180)
    with transaction.atomic():  # a rollback would take the summary and leave the window closed
        assert reads.flush_due() == 0
    assert reads.flush_due() == 1
    assert total_reads() == 2


def test_pulling_with_the_cursor_is_one_read_a_window(api_as, auditor, clock) -> None:
    from auditlog import chain

    client = api_as(auditor)
    position = 0
    for _ in range(4):  # a SIEM pulling every few seconds, each time from where it stopped
        answer = client.get(EVENTS, {"after": position})
        assert answer.status_code == 200
        position = answer.json()["next_position"]
        chain.seal_pending()  # its own read is sealed: the next pull receives it
        clock(10)
    [read] = read_events(read="search")
    assert read.context["cursor"] is True and "after" not in read.context["filters"]
    clock(120)
    assert reads.flush_due() == 1
    assert total_reads(read="search") == 4
