"""How a web process learns of new events: LISTEN/NOTIFY on PostgreSQL, Redis pub/sub with a
Redis broker, else a shared poll of the head; announced by the sealer after each batch."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection

from auditlog.live import announce
from auditlog.live.hub import Hub, redis_channel
from auditlog.services import record_event
from tests.workers import redis_url_or_skip

pytestmark = pytest.mark.django_db(transaction=True)


def started(hub: Hub) -> Hub:
    hub.join()
    deadline = time.monotonic() + 10
    while hub.mode == "idle" and time.monotonic() < deadline:
        time.sleep(0.02)
    return hub


def woken_by(hub: Hub, head: int, announce_it: Any) -> float:
    """Seconds from the announcement to the hub seeing ``head``."""
    sent = time.monotonic()
    announce_it()
    assert hub.wait(head - 1, 5.0), f"the hub did not see position {head}"
    return time.monotonic() - sent


def sealed_head() -> int:
    record_event(action="login", app="tests", context={"username": "ana"})  # sealed at commit
    from auditlog.positions import head_position

    return head_position()


def test_postgres_wakes_every_process_by_notify() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    hub = started(Hub())  # another process's hub: nothing in this one advances it
    try:
        assert hub.mode == "listen"
        head = sealed_head()
        with connection.cursor() as cursor:
            took = woken_by(
                hub,
                head,
                lambda: cursor.execute("SELECT pg_notify('auditlog_events', %s)", [str(head)]),
            )
        assert took < 0.9  # before its once-a-second check of the head
    finally:
        hub.leave()
        hub.stop()


def test_a_redis_broker_wakes_every_process_by_pubsub(settings: Any) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL, LISTEN/NOTIFY is used")
    settings.CELERY_BROKER_URL = redis_url_or_skip()
    hub = started(Hub())
    try:
        assert hub.mode == "listen"
        head = sealed_head()
        client = announce._redis(settings.CELERY_BROKER_URL)
        took = woken_by(hub, head, lambda: client.publish(redis_channel(), str(head)))
        assert took < 0.9
    finally:
        hub.leave()
        hub.stop()


def test_on_the_embedded_defaults_one_poll_serves_every_stream(settings: Any) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL, LISTEN/NOTIFY is used")
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    hub = started(Hub())
    try:
        assert hub.mode == "poll"
        head = sealed_head()
        assert woken_by(hub, head, lambda: None) < 0.9  # polled every 0.25 s
    finally:
        hub.leave()
        hub.stop()


def test_a_seal_that_finds_another_sealer_at_work_asks_again(monkeypatch: Any) -> None:
    """The other sealer may have read the queue before this seal's commits: they are sealed
    within a second all the same, not by the scheduler a minute later."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer: no second sealer to meet")
    import psycopg

    from auditlog import tasks
    from auditlog.chain.links import LOCK_ID
    from auditlog.models import EventChainPending

    queued: list[dict[str, Any]] = []
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("pool", None)
    with psycopg.connect(**params) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_ID])  # another sealer, busy
        record_event(action="login", app="tests", context={"username": "ana"})
        assert EventChainPending.objects.exists()  # its seal at commit met the busy lock
        monkeypatch.setattr(tasks.seal_events, "apply_async", lambda **kw: queued.append(kw))
        assert tasks.seal_events(not_before=time.time()) == 0
    assert len(queued) == 1 and "not_before" in queued[0]["kwargs"]
    assert tasks.seal_events(**queued[0]["kwargs"]) >= 1  # the lock is free: sealed now
