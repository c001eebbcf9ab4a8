"""Database-side capture's measures (PostgreSQL): an audited 1,000-row ``update()`` against
its uncaptured twin, and the "capture off" baseline shared with ``measure_save``.

"Capture off" is no capture at all: the table's triggers disabled, no context handed to the
database (the execute wrapper removed) and the signal path ignored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from statistics import median
from typing import Any

from django.db import connection
from django.test import RequestFactory

from auditlog import dbcapture
from auditlog.context import audit_ignore, request_context
from auditlog.models import Event
from directory.brands import default_brand
from directory.models import User

UPDATE_ROWS = 1_000


@contextmanager
def capture_off(table: str) -> Iterator[None]:
    """No capture at all on ``table`` for the block (PostgreSQL: its triggers disabled)."""
    wrappers = connection.execute_wrappers
    wrapped = dbcapture.execute_wrapper in wrappers
    if wrapped:
        wrappers.remove(dbcapture.execute_wrapper)
    postgres = connection.vendor == "postgresql"
    try:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
        with audit_ignore():
            yield
    finally:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
        if wrapped:
            wrappers.append(dbcapture.execute_wrapper)


def audit_request(admin: User, path: str) -> Any:
    """A request with everything an event takes from one: user, address (geo), brand, id."""
    request = RequestFactory().patch(path, REMOTE_ADDR="81.2.69.142", HTTP_USER_AGENT="bench/1.0")
    request.user = admin
    request.brand = default_brand()
    request.request_id = uuid.uuid4().hex
    return request


def measure_update(context: Any, report: Any) -> None:
    """``User.objects.filter(...).update(name=...)`` on 1,000 rows, audited (one event per row,
    with diff and request context) and with capture off, interleaved in one run."""
    from bench.measures import row
    from bench.run import timed

    assert context.admin is not None
    with capture_off(User._meta.db_table):
        User.objects.bulk_create(
            User(username=f"bench-bulk-{index}", email=f"b{index}@example.com")
            for index in range(UPDATE_ROWS)
        )
    rows = User.objects.filter(username__startswith="bench-bulk-")
    request = audit_request(context.admin, "/api/v3/core/users/")
    samples: dict[str, list[float]] = {"on": [], "off": []}
    before = Event.objects.count()
    counter = iter(range(10**9))

    def update(kind: str) -> None:
        name = f"Bulk {next(counter)}"
        with request_context(request):
            samples[kind].append(timed(lambda: rows.update(name=name)))

    for _ in range(6):
        for kind in ("on", "off"):
            with capture_off(User._meta.db_table) if kind == "off" else nullcontext():
                update(kind)  # warms the caches up after the switch; not counted
                samples[kind].pop()
                for _ in range(3):
                    update(kind)
    written = Event.objects.count() - before
    assert written == UPDATE_ROWS * 6 * 4, written  # one event per changed row
    ours, plain = median(samples["on"]) * 1000, median(samples["off"]) * 1000
    row(
        report,
        f"audited update() of {UPDATE_ROWS:,} rows (one event each, diff, request context)",
        f"{ours:.1f} ms",
        f"capture off: {plain:.1f} ms",
        ours / plain,
        "≤ 1.2× capture off",
        ours / plain <= 1.2,
        f"{connection.vendor}: "
        + (
            "one statement-level trigger writes the 1,000 events in one INSERT … SELECT."
            if connection.vendor == "postgresql"
            else "the signal path's Python wrapper reads the rows before and after."
        ),
    )
