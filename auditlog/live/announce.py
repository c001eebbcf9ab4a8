"""Telling every web process that events were sealed: the sealer's side of
:mod:`auditlog.live.hub`.

Subscribed to :data:`auditlog.feed.events_sealed`, so it runs after each sealed batch commits,
wherever the sealer runs (the worker, or the web process with in-process tasks). It sends the
new head: PostgreSQL ``NOTIFY`` on PostgreSQL, a Redis message when the broker is Redis, and
always to this process's own hub. Nothing here can fail the sealer (feed.publish is robust,
and errors are logged here too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection

from auditlog.feed import SealedEvent
from auditlog.live.hub import HUB, PG_CHANNEL, is_postgres, redis_channel, redis_url

logger = logging.getLogger(__name__)


@cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def on_events_sealed(events: Sequence[SealedEvent], **kwargs: Any) -> None:
    if not events:
        return
    head = max(event.sequence for event in events)
    HUB.advance(head)
    try:
        if is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [PG_CHANNEL, str(head)])
        elif url := redis_url():
            _redis(url).publish(redis_channel(), str(head))
    except Exception:
        logger.warning("Could not announce %d sealed events to live streams", len(events))
