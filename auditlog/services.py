"""Writes with consequences: recording events, housekeeping. (Retention and GDPR erasure:
:mod:`auditlog.retention`.)"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from auditlog.capture import current_actor, current_request
from auditlog.models import (
    ACTION_VALUES,
    Event,
    EventAction,
)
from auditlog.sanitize import sanitize

logger = logging.getLogger(__name__)


def as_action(action: str) -> str:
    """A known action as is; anything else as ``custom_<name>``."""
    if action in ACTION_VALUES:
        return str(action)
    return f"{EventAction.CUSTOM_PREFIX}{action}"


def record_event(
    action: str,
    *,
    app: str,
    context: Mapping[str, Any] | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
) -> Event:
    """Write one event in the current transaction and return it.

    Inside a request (given, or the current one) the event carries the request's path, user,
    client address, brand and geo. ``user`` (else the :func:`~auditlog.capture.acting_user`)
    names who acted; outside a request with nobody named, the event has no user.
    """
    event = Event(action=as_action(action), app=app, context=sanitize(dict(context or {})))
    request = request if request is not None else current_request()
    actor = user if user is not None else current_actor()
    if request is not None:
        return event.from_http(request, user=actor)
    if actor is not None:
        event.set_user(actor)
    event.save()
    return event
