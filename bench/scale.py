"""The bench's measures of scale (issue 14): the page of 1,000 events, a full crawl, the chart
and the map over 7 and 30 days, and the sealer beside batch ingest; each beside its naive
baseline in the same run (imported after Django is set up, as :mod:`bench.measures`)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.utils import timezone

from auditlog.chain import seal_pending, sealing_backlog
from auditlog.models import Event
from bench.measures import Context, naive_page, row
from bench.run import Report, Row, p50_ms, rate, timed, vacuum_analyze

TABLE = Event._meta.db_table
BIG_PAGE = 1_000


# --- A page of 1,000 events and a full crawl at that size -----------------------------------


def measure_big_page(context: Context, report: Report) -> None:
    """``page_size=1000`` (what Elastic's integrations ask for), page 1."""
    client = context.client()

    def ours() -> None:
        response = client.get("/api/v3/events/events/", {"page_size": BIG_PAGE})
        assert response.status_code == 200, response.content[:300]

    mine = p50_ms(ours, repeat=20)
    naive = p50_ms(lambda: naive_page({}, size=BIG_PAGE), repeat=10, warmup=1)
    row(
        report,
        f"list API page 1, page_size={BIG_PAGE}",
        f"p50 {mine:.1f} ms",
        f"naive COUNT+LIMIT: {naive:.1f} ms",
        naive / mine,
        "p50 ≤ 30 ms",
        mine <= 30,
        "Rows as tuples, the JSON columns embedded as stored (orjson.Fragment): no model "
        "instance, no serializer and no JSON decoding per row; the naive baseline decodes "
        "models and does not render.",
    )


def measure_crawl(context: Context, report: Report) -> None:
    """Every page of the whole list at ``page_size=1000``, as a client that pulls everything
    pages until ``next`` is 0: the slowest page."""
    client = context.client()
    times: list[float] = []
    page, seen = 1, 0
    while page:
        start = time.perf_counter()
        response = client.get("/api/v3/events/events/", {"page_size": BIG_PAGE, "page": page})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        seen += len(body["results"])
        page = body["pagination"]["next"]
    last_offset = max(seen - BIG_PAGE, 0)
    naive = p50_ms(lambda: naive_page({}, offset=last_offset, size=BIG_PAGE), repeat=3, warmup=1)
    slowest = max(times) * 1000
    row(
        report,
        f"full crawl at page_size={BIG_PAGE}: slowest of {len(times)} pages ({seen:,} events)",
        f"{slowest:.0f} ms (median {sorted(times)[len(times) // 2] * 1000:.0f} ms)",
        f"naive COUNT+OFFSET, last page: {naive:.0f} ms",
        naive / slowest,
        "every page ≤ 1 s",
        slowest <= 1000,
        "Pages past offset 5,000 fetch their keys first, then the rows; the first such page "
        "walks the index past the offset, each later one continues from the row where the "
        "page before ended (an index range).",
    )


# --- The volume chart and the map over 7 and 30 days ----------------------------------------


def _naive_volume(since: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('hour', created), action, count(*) FROM {TABLE} "
            "WHERE created >= %s GROUP BY 1, 2",
            [since],
        )
        cursor.fetchall()


def _naive_map(since: object) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT context->'geo'->'lat', context->'geo'->'long', count(*) FROM {TABLE} "
            "WHERE created >= %s AND context->'geo'->'lat' IS NOT NULL "
            "AND context->'geo'->'long' IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5000",
            [since],
        )
        cursor.fetchall()


def measure_aggregates(context: Context, report: Report) -> None:
    """The chart and the map read the hourly roll-ups (kept by the sealer), beside a GROUP BY
    over the events of the same days."""
    seal_pending()  # the roll-ups count sealed events; a backlog is read from the events
    client = context.client()
    browser = Client()
    assert context.admin is not None
    browser.force_login(context.admin)
    for days in (7, 30):
        since = timezone.now() - timedelta(days=days)
        in_range = Event.objects.filter(created__gte=since).count()

        def volume(days: int = days) -> None:
            answer = client.get("/api/v3/events/events/volume/", {"history_days": days})
            assert answer.status_code == 200

        def geo(days: int = days) -> None:
            assert browser.get("/events/map/", {"history_days": days}).status_code == 200

        for label, ours, naive in (
            ("volume chart", volume, lambda since=since: _naive_volume(since)),
            ("map points", geo, lambda since=since: _naive_map(since)),
        ):
            mine = p50_ms(ours, repeat=10)
            baseline = p50_ms(naive, repeat=5, warmup=1)
            row(
                report,
                f"{label} ({days} days, {in_range:,} events)",
                f"p50 {mine:.0f} ms",
                f"naive GROUP BY on the events: {baseline:.0f} ms",
                baseline / mine,
                "p50 ≤ 200 ms",
                mine <= 200,
            )


# --- The sealer beside batch ingest ---------------------------------------------------------


def measure_seal(context: Context, report: Report) -> None:
    """The backlog that batch ingest (and loading) left, then the sealer's rate through it;
    beside the API batch-ingest rate measured in the same run (``ingest``)."""
    backlog = sealing_backlog()
    age = backlog.age_seconds(timezone.now())
    report.add(
        Row(
            "unsealed backlog after loading and ingest (no sealer running)",
            f"{backlog.unsealed:,} events, oldest waiting {age or 0:.0f} s",
            "-",
            "-",
            "-",
            None,
            "The bench runs no Celery worker: every event loaded or ingested waits for the "
            "sealer; in production it seals every few seconds (SEAL_DEBOUNCE_SECONDS).",
        )
    )
    if not backlog.unsealed:
        return
    sealed = 0

    def seal() -> None:
        nonlocal sealed
        sealed = seal_pending()

    seconds = timed(seal)
    ingest = context.extra.get("ingest_rate")
    ratio = (sealed / seconds) / ingest if ingest else 0.0
    row(
        report,
        f"sealing {sealed:,} queued events into the chain",
        rate(sealed, seconds),
        f"API batch ingest: {ingest:,.0f} rows/s" if ingest else "API batch ingest: not run",
        ratio,
        "sealing ≥ batch ingest",
        ratio >= 1 if ingest else None,
    )


# --- Disk -----------------------------------------------------------------------------------------


def _total_size(cursor: object, table: str) -> int:
    """A table's size with its indexes and TOAST; a partitioned table's is its partitions'."""
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size("
        "t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf) "
        "ELSE pg_total_relation_size(c.oid) END FROM pg_class c WHERE c.oid = %s::regclass",
        [table],
    )
    return int(cursor.fetchone()[0])  # type: ignore[attr-defined]


def measure_disk(context: Context, report: Report) -> None:
    """What the events take on disk, per event, beside the bytes of their rows' data alone; and
    the chain's and the roll-ups' tables beside them (for sizing: README, Scale-out)."""
    from auditlog.models import EventChainLink, EventChainPending, EventRollup

    vacuum_analyze()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(sum(pg_column_size(e.*)), 0) FROM {TABLE} e")
        events, data = cursor.fetchone()
        if not events:
            return
        table = _total_size(cursor, TABLE)
        chain = sum(
            _total_size(cursor, model._meta.db_table)
            for model in (EventChainLink, EventChainPending)
        )
        rollups = _total_size(cursor, EventRollup._meta.db_table)
    per_event = table / events
    row(
        report,
        f"disk: the events table with its indexes ({events:,} events)",
        f"{table / 2**30:.2f} GiB, {per_event:,.0f} B/event",
        f"the rows' data alone: {data / events:,.0f} B/event",
        table / data,
        "-",
        None,
        f"The chain's tables add {chain / events:,.0f} B/event and the roll-ups "
        f"{rollups / 2**20:,.1f} MiB in all; {(table + chain) / events * 10**6 / 2**30:.1f} GiB "
        "per million events in all (vacuumed; indexes included).",
    )
