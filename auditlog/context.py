"""Who is acting and in which request: the context variables every event is recorded in.

Kept apart from capture and the recording service, so that both can read them without
importing each other. The audit middleware sets the request; :func:`acting_user` names who
acts outside a request (commands, tasks); :func:`audit_ignore` suppresses model-change capture
in a block; :func:`event_origin` says where new users come from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest

_current_request: ContextVar[HttpRequest | None] = ContextVar("auditlog_request", default=None)
_acting_user: ContextVar[Any] = ContextVar("auditlog_acting_user", default=None)
_ignored: ContextVar[bool] = ContextVar("auditlog_ignored", default=False)
_origin: ContextVar[str | None] = ContextVar("auditlog_origin", default=None)


@contextmanager
def acting_user(user: Any) -> Iterator[None]:
    """Attribute the events recorded in this block to ``user`` (inside or outside a request)."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


@contextmanager
def audit_ignore() -> Iterator[None]:
    """Record no model-change events in this block."""
    token = _ignored.set(True)
    try:
        yield
    finally:
        _ignored.reset(token)


@contextmanager
def event_origin(origin: str) -> Iterator[None]:
    """Stamp ``origin`` on the ``user_created`` events recorded in this block."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


@contextmanager
def request_context(request: HttpRequest) -> Iterator[None]:
    """Make ``request`` the current request (used by the audit middleware)."""
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


@contextmanager
def outside_request() -> Iterator[None]:
    """No current request in this block (an event about an earlier request, written later)."""
    token = _current_request.set(None)
    try:
        yield
    finally:
        _current_request.reset(token)


def current_request() -> HttpRequest | None:
    return _current_request.get()


def current_actor() -> Any:
    return _acting_user.get()


def capture_is_ignored() -> bool:
    return _ignored.get()


def current_origin() -> str:
    if origin := _origin.get():
        return origin
    return "http" if current_request() is not None else "unknown"
