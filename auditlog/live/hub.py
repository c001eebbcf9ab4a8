"""Waking live streams when new events are sealed, without each stream polling.

One :class:`Hub` per process (:data:`HUB`) knows the chain's head (the last sealed position)
and wakes the streams waiting for it to move: async streams (the ASGI server's) through
their event loop, threaded ones (a WSGI server's) through a condition. One background thread
per process, and only while some stream is open, watches for new events:

- PostgreSQL: ``LISTEN auditlog_events``; the sealer sends ``NOTIFY`` after each sealed batch
  commits (:mod:`auditlog.live.announce`), so every web process hears it at once;
- a Redis broker (``CELERY_BROKER_URL=redis://...``): the same through Redis pub/sub, on a
  channel named after the database;
- otherwise (SQLite and the file-system broker): it reads the head every
  :data:`POLL_SECONDS`, one cheap query (the largest sequence) for all the process's streams.

With PostgreSQL or Redis it still reads the head every :data:`SAFETY_SECONDS`, in case a
message was lost (a reconnection). A sealer in the same process wakes the hub directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from auditlog.positions import head_position

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
SAFETY_SECONDS = 1.0
LINGER_SECONDS = (
    2.0  # the thread stops (and closes its connections) this long after the last stream
)
PG_CHANNEL = "auditlog_events"


def redis_url() -> str | None:
    """The Redis to announce through: the broker's, when the broker is Redis."""
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


def redis_channel() -> str:
    """One channel per database, so that two installations on one Redis do not mix."""
    return f"auditlog:events:{settings.DATABASES['default']['NAME']}"


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


class Hub:
    """The process's view of the chain's head, and the streams waiting for it to move."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.head = 0
        self.mode = "idle"
        self._streams = 0
        self._last_leave = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    # --- streams ------------------------------------------------------------------------------

    def join(self) -> None:
        """A stream opens: start watching (reading the head first, so the stream knows it)."""
        with self._condition:
            self._streams += 1
            running = self._thread is not None
            if not running:
                self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
                self._thread.start()

    def leave(self) -> None:
        with self._condition:
            self._streams = max(0, self._streams - 1)
            self._last_leave = time.monotonic()

    def wait(self, position: int, timeout: float) -> bool:
        """Block until the head is past ``position`` (True) or ``timeout`` passes (False)."""
        with self._condition:
            return self._condition.wait_for(lambda: self.head > position, timeout)

    async def wait_async(self, position: int, timeout: float) -> bool:
        """:meth:`wait` for a coroutine: the event loop runs on while it waits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._condition:
            if self.head > position:
                return True
            self._waiters.add((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._condition:
                self._waiters.discard((loop, future))

    def advance(self, head: int) -> None:
        """The head is now ``head`` (a sealed batch, a notification, a read of the table)."""
        with self._condition:
            if head == self.head:
                return
            self.head = head
            self._condition.notify_all()
            waiters = list(self._waiters)
        logger.debug("Live events: head %d, waking %d streams", head, len(waiters))
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future)

    # --- the watching thread ------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching now, whatever streams are open (tests: before the database goes)."""
        with self._condition:
            thread, self._stopping = self._thread, True
        if thread is not None:
            thread.join(timeout)
        with self._condition:
            self._stopping = False
            self._streams = 0
            self.head = 0

    def _idle(self) -> bool:
        with self._condition:
            busy = self._streams or time.monotonic() - self._last_leave < LINGER_SECONDS
            if busy and not self._stopping:
                return False
            self._thread = None
            return True

    def _run(self) -> None:
        listener: Callable[[float], bool] | None = None
        closers: list[Callable[[], Any]] = []
        try:
            self._read_head()
            listener = self._listener(closers)
            self.mode = "listen" if listener else "poll"
            last_read = time.monotonic()
            while not self._idle():
                if listener is None:
                    time.sleep(POLL_SECONDS)
                    signalled = True
                else:
                    try:
                        signalled = listener(SAFETY_SECONDS / 2)
                    except Exception:
                        logger.warning("Live events: the listener failed; polling instead")
                        listener, self.mode = None, "poll"
                        signalled = True
                if signalled or time.monotonic() - last_read >= SAFETY_SECONDS:
                    self._read_head()
                    last_read = time.monotonic()
        finally:
            self.mode = "idle"
            for close in closers:
                with contextlib.suppress(Exception):
                    close()
            connection.close()

    def _read_head(self) -> None:
        try:
            close_old_connections()
            self.advance(head_position())
        except Exception:
            logger.warning("Live events: cannot read the chain's head", exc_info=True)
            connection.close()
            time.sleep(SAFETY_SECONDS)

    def _listener(self, closers: list[Callable[[], Any]]) -> Callable[[float], bool] | None:
        """A function that waits up to N seconds for an announcement (True when one came),
        or None: poll."""
        try:
            if is_postgres():
                return _postgres_listener(closers)
            url = redis_url()
            if url:
                return _redis_listener(url, closers)
        except Exception:
            logger.warning("Live events: cannot listen for new events; polling", exc_info=True)
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _postgres_listener(closers: list[Callable[[], Any]]) -> Callable[[float], bool]:
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("pool", None)
    listen = psycopg.connect(**params, autocommit=True)
    closers.append(listen.close)
    listen.execute(f"LISTEN {PG_CHANNEL}")

    def wait(timeout: float) -> bool:
        return any(True for _ in listen.notifies(timeout=timeout, stop_after=1))

    return wait


def _redis_listener(url: str, closers: list[Callable[[], Any]]) -> Callable[[float], bool]:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_channel())
    closers.extend([pubsub.close, client.close])

    def wait(timeout: float) -> bool:
        return pubsub.get_message(timeout=timeout) is not None

    return wait


HUB = Hub()
