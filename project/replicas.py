"""Read replicas: lists, searches, charts, the map and exports read from a streaming replica
of PostgreSQL; every write, and every read that a write depends on, goes to the primary.

Routing is opt-in. A view that only reads the record marks its request with
:func:`reading_from_replica` (or :class:`ReplicaReadsMixin` / :func:`reads_from_replica`);
everything else (the recording service, the sealer, retention, sessions, permissions
checked in middleware) reads the primary as before. Within a marked request a read goes to a
replica unless

- the user wrote within ``DATABASE_REPLICA_PIN_SECONDS`` (a cookie for browsers, the cache
  for API clients): they see their own write at once;
- the primary's connection is inside a transaction (a read that a write depends on);
- no replica is healthy: each is asked for its replay lag at most every
  ``DATABASE_REPLICA_CHECK_SECONDS``, and one that lags more than
  ``DATABASE_REPLICA_MAX_LAG`` or does not answer is left out until it recovers.

Without ``DATABASE_REPLICA_URLS`` every function here answers "the primary" at no cost.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

DEFAULT = "default"
PIN_COOKIE = "auditlog_primary"

# The alias that reads of the current request go to (None: the router does not interfere).
_read_alias: ContextVar[str | None] = ContextVar("replica_read_alias", default=None)


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


# --- Health ---------------------------------------------------------------------------------

_LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
END
"""
_health: dict[str, tuple[float, bool]] = {}
_health_lock = threading.Lock()
_turn = itertools.count()


def replica_lag(alias: str) -> float | None:
    """Seconds the replica's replay is behind what it has received (0 when caught up; None
    when the server is not a replica). Raises DatabaseError when it cannot be asked."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_LAG_SQL)
        (lag,) = cursor.fetchone()
    return None if lag is None else float(lag)


def _healthy(alias: str) -> bool:
    now = time.monotonic()
    checked = _health.get(alias)
    if checked and now - checked[0] < settings.DATABASE_REPLICA_CHECK_SECONDS:
        return checked[1]
    with _health_lock:
        try:
            lag = replica_lag(alias)
            healthy = lag is not None and lag <= settings.DATABASE_REPLICA_MAX_LAG
            if not healthy:
                logger.warning("Replica %s left out: replay lag %s s", alias, lag)
        except DatabaseError as exc:
            healthy = False
            logger.warning("Replica %s left out: %s", alias, str(exc).strip().splitlines()[0])
            connections[alias].close()
        _health[alias] = (time.monotonic(), healthy)
    return healthy


def forget_health() -> None:
    """Ask every replica again at its next use (tests, and after a configuration change)."""
    _health.clear()


def healthy_replica() -> str | None:
    """A replica that answers and keeps up, taken in turn; None when there is none."""
    aliases = replica_aliases()
    if not aliases:
        return None
    start = next(_turn)
    for offset in range(len(aliases)):
        alias = aliases[(start + offset) % len(aliases)]
        if _healthy(alias):
            return alias
    return None


# --- Pinning to the primary after a write ---------------------------------------------------


def _pin_key(user: Any) -> str | None:
    pk = getattr(user, "pk", None)
    return f"replicas:pinned:{pk}" if pk is not None else None


def pinned(request: HttpRequest | None) -> bool:
    """Whether this request's user wrote recently and must read the primary."""
    if request is None:
        return False
    if request.COOKIES.get(PIN_COOKIE):
        return True
    key = _pin_key(getattr(request, "user", None))
    return bool(key and cache.get(key))


def read_alias(request: HttpRequest | None = None) -> str:
    """Where a read of the record for ``request`` goes: a healthy replica, or the primary."""
    if not replica_aliases() or pinned(request):
        return DEFAULT
    return healthy_replica() or DEFAULT


@contextmanager
def reading_from_replica(request: HttpRequest | None = None) -> Iterator[str]:
    """Within this block, reads that the router decides go to :func:`read_alias`."""
    alias = read_alias(request)
    token = _read_alias.set(alias if alias != DEFAULT else None)
    try:
        yield alias
    finally:
        _read_alias.reset(token)


def reads_from_replica(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A function view (GET) that reads the record from a replica."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return view(request, *args, **kwargs)
        with reading_from_replica(request):
            response = view(request, *args, **kwargs)
            render = getattr(response, "render", None)
            if callable(render) and not getattr(response, "is_rendered", True):
                response = render()  # templates read lazily: render them on the replica too
            return response

    return wrapped


class ReplicaReadsMixin:
    """For a DRF view: its safe requests (after authentication) read from a replica."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method in ("GET", "HEAD") and replica_aliases():
            alias = read_alias(request)
            self._replica_token = _read_alias.set(alias if alias != DEFAULT else None)

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        token: Token[str | None] | None = getattr(self, "_replica_token", None)
        if token is not None:
            if hasattr(response, "render") and not response.is_rendered:
                response.render()  # the serializer reads lazily: still on the replica
            _read_alias.reset(token)
            del self._replica_token
        return response


class ReplicaMiddleware:
    """Pins a user who wrote to the primary for ``DATABASE_REPLICA_PIN_SECONDS``: a browser by
    a cookie, any authenticated user (API tokens too) by the cache (shared between web
    processes when the cache is)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _read_alias.set(None)
        try:
            response = self.get_response(request)
        finally:
            _read_alias.reset(token)
        if replica_aliases() and request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
            seconds = settings.DATABASE_REPLICA_PIN_SECONDS
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=seconds,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
            key = _pin_key(getattr(request, "user", None))
            if key:
                cache.set(key, True, seconds)
        return response


class ReplicaRouter:
    """Sends a marked read to its replica; everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        alias = _read_alias.get()
        if alias is None or connections[DEFAULT].in_atomic_block:
            return None
        return alias

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return DEFAULT

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the replicas hold the primary's data

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT
