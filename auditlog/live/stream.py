"""The event list as Server-Sent Events: ``GET /api/v3/events/events/stream/``.

Each event is sent as ``id: <position>`` and ``data: <the list's JSON of the event>``, in
commit order (:mod:`auditlog.positions`). A client that reconnects sends the last id it got as
``Last-Event-ID`` (browsers do) or ``?after=``, and gets exactly the events after it. Without
either, the stream starts at the head: new events only.

Everything that can be refused (permissions, search, filters, the position) is checked before
the response starts, so a refusal is a plain 400/403 with a body. Then the response streams:

- under ASGI (``make run``), from an async generator: an open stream is a coroutine waiting on
  :data:`~auditlog.live.hub.HUB`, not a thread; each read runs briefly in the thread pool;
- under WSGI (``runserver``, the tests' live server), from a plain generator in the request's
  thread.

A comment (``: keep-alive``) goes out every ``LIVE_HEARTBEAT`` (15 seconds) so that proxies keep
the connection open; it carries the position scanned so far as ``id:``, so a client with a
narrow filter resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from auditlog.live.hub import HUB, POLL_SECONDS
from auditlog.models import Event
from auditlog.positions import PositionError, events_after, head_position, parse_position
from auditlog.representation import event_json
from project.renderers import FastJSONRenderer

logger = logging.getLogger(__name__)

BATCH = 500
RETRY_MILLISECONDS = 2000
CONTENT_TYPE = "text/event-stream"
_render = FastJSONRenderer().render


def heartbeat_seconds() -> float:
    return max(0.1, settings.LIVE_HEARTBEAT.total_seconds())


def requested_position(request: HttpRequest) -> int | None:
    """Where the client resumes: ``Last-Event-ID`` first, then ``?after=``; None: the head.
    Raises :class:`PositionError` naming the one that is not a position."""
    header = request.headers.get("Last-Event-ID")
    if header is not None and header.strip():
        return parse_position(header, name="Last-Event-ID")
    after = request.GET.get("after")
    if after is not None:
        return parse_position(after, name="after")
    return None


@dataclass(frozen=True)
class Chunk:
    """What one read found: the SSE text of its events, where it ended, whether more waits."""

    text: bytes
    position: int
    more: bool


class Reader:
    """Reads one stream's events after its position, in commit order."""

    def __init__(self, events: QuerySet[Event], position: int | None, tz: tzinfo) -> None:
        self.events = events.order_by()
        self.position = head_position() if position is None else position
        self.tz = tz
        # Streams of the same query (the SQL says it all: a reader's permission is one
        # model permission, checked before) at the same position read the same events.
        try:
            self.key = f"{tz}|{self.events.query}"
        except Exception:  # a query Django cannot print: this stream reads alone
            self.key = f"{id(self)}"

    def read_at(self, position: int) -> Chunk:
        page = events_after(self.events, position, BATCH)
        text = b"".join(
            b"id: %d\ndata: %s\n\n" % (item.sequence, _render(event_json(item.event, self.tz)))
            for item in page.items
        )
        moved = page.next_position > position
        return Chunk(text, max(position, page.next_position), moved and len(page.items) == BATCH)

    def read(self) -> tuple[bytes, bool]:
        """The next events as SSE text, and whether more may be waiting right now."""
        chunk = self.read_at(self.position)
        self.position = chunk.position
        return chunk.text, chunk.more

    def read_fresh(self, position: int) -> Chunk:
        """:meth:`read_at` from a thread of the pool, on a healthy connection."""
        close_old_connections()
        chunk = self.read_at(position)
        logger.debug("Live events: read after %d up to %d", position, chunk.position)
        return chunk

    async def read_shared(self) -> tuple[bytes, bool]:
        """:meth:`read`, once for all the process's streams of the same query and position:
        when new events wake 200 streams watching the same search, one of them queries."""
        # The hub's head in the key: a read made before the latest events were announced is
        # never handed to a stream that woke for them.
        key = (self.key, self.position, HUB.head)
        task = _shared_reads.get(key)
        if task is None:
            read = sync_to_async(self.read_fresh, thread_sensitive=False)
            task = asyncio.ensure_future(read(self.position))
            _shared_reads[key] = task
            # Kept a moment for the streams that wake a little later.
            task.add_done_callback(
                lambda _: asyncio.get_running_loop().call_later(
                    SHARED_READ_SECONDS, _shared_reads.pop, key, None
                )
            )
        chunk = await asyncio.shield(task)
        self.position = chunk.position
        return chunk.text, chunk.more

    def heartbeat(self) -> bytes:
        return b"id: %d\n: keep-alive\n\n" % self.position


_shared_reads: dict[tuple[str, int, int], asyncio.Future[Chunk]] = {}
SHARED_READ_SECONDS = 2.0


def opening() -> bytes:
    return b"retry: %d\n: stream of events in commit order\n\n" % RETRY_MILLISECONDS


def sync_stream(reader: Reader, first: bytes) -> Iterator[bytes]:
    HUB.join()
    try:
        yield opening() + first
        beat = heartbeat_seconds()
        last_sent = time.monotonic()
        while True:
            seen = reader.position
            if not HUB.wait(seen, min(beat, max(0.0, last_sent + beat - time.monotonic()))):
                yield reader.heartbeat()
                last_sent = time.monotonic()
                continue
            more = True
            while more:
                chunk, more = reader.read()
                if chunk:
                    yield chunk
                    last_sent = time.monotonic()
            if reader.position == seen:  # the hub's head is ahead of the table (a reset)
                time.sleep(POLL_SECONDS)
    finally:
        HUB.leave()


def release_request_thread() -> None:
    """Let the thread that ran this request's synchronous part (DRF's view, the middleware) go.

    Django's ASGI handler gives each request a thread of its own for its synchronous code,
    kept until the response ends: for a stream, that would be one idle thread per open
    stream. The stream's own reads run in the shared pool, so the request's thread is ended
    here, with its database connection (Django starts a short-lived one for its end-of-request
    signal). 200 open streams then hold no threads and no connections of their own."""
    with contextlib.suppress(Exception):  # asgiref's internals moved: the thread just stays
        from asgiref.sync import SyncToAsync

        context = SyncToAsync.thread_sensitive_context.get(None)
        executor = SyncToAsync.context_to_thread_executor.pop(context, None) if context else None
        if executor is not None:
            executor.submit(connections.close_all)  # its database connection goes with it
            executor.shutdown(wait=False)


async def async_stream(reader: Reader, first: bytes) -> AsyncIterator[bytes]:
    release_request_thread()
    HUB.join()
    try:
        yield opening() + first
        beat = heartbeat_seconds()
        last_sent = time.monotonic()
        while True:
            seen = reader.position
            timeout = min(beat, max(0.0, last_sent + beat - time.monotonic()))
            if not await HUB.wait_async(seen, timeout):
                yield reader.heartbeat()
                last_sent = time.monotonic()
                continue
            more = True
            while more:
                chunk, more = await reader.read_shared()
                if chunk:
                    yield chunk
                    last_sent = time.monotonic()
            if reader.position == seen:
                await _sleep(POLL_SECONDS)
    finally:
        HUB.leave()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def respond(request: HttpRequest, events: QuerySet[Event]) -> StreamingHttpResponse:
    """The streaming response for ``events`` (already searched, filtered and permitted)
    from the requested position. Raises :class:`PositionError` for a bad position; the first
    read happens here, so a query the database refuses fails before anything streams."""
    reader = Reader(events, requested_position(request), timezone.get_current_timezone())
    first, _ = reader.read()
    asgi = getattr(request, "scope", None) is not None
    content: Any = async_stream(reader, first) if asgi else sync_stream(reader, first)
    response = StreamingHttpResponse(content, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


__all__ = ["PositionError", "Reader", "requested_position", "respond"]
