"""Retention of a month's partition (PostgreSQL) beside one raw DELETE of the same rows: a
month of expired events, in a partition of its own, is dropped by retention
(:func:`auditlog.retention.drop_expired_partitions`: the chain's prune records read from the
month's links partition, the month's roll-ups deleted, ``DROP TABLE`` of both partitions), and
the size on disk of the events and links tables is measured before and after.

Wiring (bench/run.py): add ``"partition_retention"`` to ``MEASURES`` and, in
bench/measures.py, ``from bench.partition_retention import measure_partition_retention``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auditlog import partitions
from auditlog.bulk import EventRow
from auditlog.chain.sealing import seal_pending
from auditlog.demo import build_directory, generate_events, record_demo_events, sample_addresses
from auditlog.retention import drop_expired_partitions
from bench.run import Report, Row, vacuum_analyze

MONTHS_BACK = 6


def month_of_expired_events(month: datetime, count: int, seed: int) -> Iterator[EventRow]:
    """``count`` demo events spread over the 28 first days of ``month``, all expired."""
    directory = build_directory(random.Random(seed))
    directory.addresses = sample_addresses(random.Random(seed + 1))
    step = timedelta(days=28) / max(count, 1)
    for index, event in enumerate(generate_events(random.Random(seed + 2), directory, count)):
        created = month + index * step
        yield event._replace(created=created, expires=created)


def disk_bytes() -> int:
    """The events and links tables' size on disk: every partition with its indexes and
    TOAST (a plain table is its own tree)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM ("
            " SELECT relid FROM pg_partition_tree('auditlog_event')"
            " UNION ALL SELECT relid FROM pg_partition_tree('auditlog_eventchainlink')) AS t"
        )
        return int(cursor.fetchone()[0])


def raw_delete(month: datetime) -> tuple[int, float]:
    """One raw DELETE of the month's rows, rolled back: ``(rows, seconds)``."""
    end = partitions.add_months(month, 1)
    with connection.cursor() as cursor, transaction.atomic():
        start = time.perf_counter()
        cursor.execute(
            "DELETE FROM auditlog_event WHERE created >= %s AND created < %s", [month, end]
        )
        deleted = cursor.rowcount
        seconds = time.perf_counter() - start
        transaction.set_rollback(True)
    return deleted, seconds


def measure_partition_retention(context: object, report: Report) -> None:
    if connection.vendor != "postgresql":
        return
    count = int(getattr(context, "events", 1_000_000))
    month = partitions.add_months(partitions.month_of(timezone.now()), -MONTHS_BACK)
    partitions.ensure_partitions(since=month)
    print(f"bench: loading {count:,} expired events into one month's partition", flush=True)
    record_demo_events(month_of_expired_events(month, count, seed=47))
    seal_pending()
    vacuum_analyze()
    deleted_raw, raw_seconds = raw_delete(month)
    # The rolled-back DELETE marked every row with its aborted transaction: the next reader
    # would check and set the hint bits of the whole month (writing every page), a cost of
    # the baseline's, not of retention's.
    vacuum_analyze()
    before = disk_bytes()
    with CaptureQueriesContext(connection) as statements:
        start = time.perf_counter()
        dropped = drop_expired_partitions(timezone.now())
        ours = time.perf_counter() - start
    for statement in sorted(statements, key=lambda s: -float(s["time"]))[:6]:
        print(f"bench:   {float(statement['time']):.3f} s  {statement['sql'][:100]}", flush=True)
    after = disk_bytes()
    met = ours <= 1 and after < before and dropped == deleted_raw
    report.add(
        Row(
            f"retention: drop a month's partition of {dropped:,} expired events",
            f"{ours:.2f} s, events + links {before / 2**20:,.0f} → {after / 2**20:,.0f} MB",
            f"one raw DELETE: {raw_seconds:.2f} s (disk kept until VACUUM)",
            f"{ours / raw_seconds:.2f}×",
            "≤ 1 s, the table shrinks",
            met,
            "the drop includes the chain's prune records (read from the month's links "
            "partition), the month's roll-ups deleted and both partitions dropped; the raw "
            "DELETE (of the events only) is rolled back, then VACUUM, and keeps no account.",
        )
    )
