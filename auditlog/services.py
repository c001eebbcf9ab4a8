"""Recording events: the one way an event is written. (Retention and GDPR erasure:
:mod:`auditlog.retention`.)

Every event enters the log here, whatever door it comes through: model-change capture,
authentication signals, the middleware, the API (one event or a batch), the chain's reports,
notifications, exports, demo data and importers. The service validates, applies the redaction
policy exactly once, enriches from the request and the acting user, writes, and asks the chain
for a seal once the write commits. No other code creates event rows (a test checks).

* :func:`record_event`: an event this application observes, in the current transaction.
* :func:`record_events`: a batch of events given whole (another system's), all or nothing.
* :func:`ingest_event`: one event given whole (the API's single create).
"""

from __future__ import annotations

import difflib
import inspect
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Required, TypedDict
from uuid import UUID

from django.apps import apps
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from auditlog.bulk import BATCH_SIZE, EventRow, write_events
from auditlog.chain.sealing import request_seal
from auditlog.context import current_actor, current_request
from auditlog.enrich import enrich_context
from auditlog.exceptions import exception_to_dict
from auditlog.models import (
    ACTION_VALUES,
    Event,
    EventAction,
    action_problem,
    canonical_ip,
    current_retention,
    default_event_brand,
)
from auditlog.requests import client_ip as request_client_ip
from auditlog.requests import http_request_context
from auditlog.sanitize import get_user, model_to_dict, redact_event

logger = logging.getLogger(__name__)

# --- What an event given whole may hold ------------------------------------------------------

EVENT_FIELDS = frozenset({"action", "app", "user", "context", "client_ip", "brand"})
# Set by the server, accepted and ignored; kept as given by an import (``keep_identity``).
IDENTITY_FIELDS = frozenset({"pk", "created", "expires"})
APP_MAX_LENGTH = 255
_SURROGATE = re.compile("[\ud800-\udfff]")  # PostgreSQL cannot store them


class EventItem(TypedDict, total=False):
    """One event given whole, shaped like authentik's event JSON."""

    action: Required[str]
    app: Required[str]
    user: dict[str, Any]
    context: dict[str, Any]
    client_ip: str | None
    brand: dict[str, Any]
    pk: str | UUID  # kept only with keep_identity
    created: str | datetime  # likewise
    expires: str | datetime  # likewise; else created + the retention


class ValidEvent(TypedDict):
    """An :class:`EventItem` that passed :func:`validate_event_item`: typed, not yet redacted."""

    action: str
    app: str
    user: dict[str, Any]
    context: dict[str, Any]
    client_ip: str | None
    brand: dict[str, Any] | None
    pk: UUID | None
    created: datetime | None
    expires: datetime | None


class EventsRejected(ValueError):
    """Why events were refused, nothing written: ``{field: [message]}`` for one event,
    ``{index: {field: [message]}}`` for a batch."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(f"Invalid event data: {errors}")
        self.errors = errors


# --- Validation (one set of rules and messages for every door) -------------------------------

Problems = dict[str, list[str]]


def validate_event_item(
    item: Any, *, refuse_unknown: bool = True, keep_identity: bool = False
) -> tuple[Problems, ValidEvent | None]:
    """The problems of one event given whole (empty: none) and, when it has none, its typed
    values. The messages are DRF's own for the same mistakes, so the API's single and bulk
    endpoints say the same thing. ``refuse_unknown``: fields other than an event's are an
    error (else ignored). ``keep_identity``: ``pk``, ``created`` and ``expires`` are read (an
    import), else ignored."""
    if not isinstance(item, Mapping):
        kind = type(item).__name__
        return {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}, None
    problems: Problems = {}
    if refuse_unknown and (unknown := set(item) - EVENT_FIELDS - IDENTITY_FIELDS):
        problems["non_field_errors"] = [f"Unknown fields: {', '.join(sorted(map(str, unknown)))}."]
    action = _text(item, "action", problems)
    if action is not None and (problem := action_problem(action)):
        problems["action"] = [problem]
    app = _text(item, "app", problems, max_length=APP_MAX_LENGTH)
    objects = {key: _json_object(item, key, problems) for key in ("user", "context", "brand")}
    address = _client_ip(item, problems)
    pk = created = expires = None
    if keep_identity:
        pk = _uuid(item, "pk", problems)
        created = _datetime(item, "created", problems)
        expires = _datetime(item, "expires", problems)
    if problems or action is None or app is None:
        return problems, None
    return problems, ValidEvent(
        action=action,
        app=app,
        user=objects["user"] or {},
        context=objects["context"] or {},
        client_ip=address,
        brand=objects["brand"],
        pk=pk,
        created=created,
        expires=expires,
    )


def _text(
    item: Mapping[str, Any], key: str, problems: Problems, *, max_length: int | None = None
) -> str | None:
    """A required text field, checked as DRF's ``CharField`` does (numbers become text, the
    value is trimmed)."""
    if key not in item:
        problems[key] = ["This field is required."]
        return None
    value = item[key]
    if value is None:
        problems[key] = ["This field may not be null."]
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems[key] = ["Not a valid string."]
        return None
    text = str(value).strip()
    if not text:
        problem = "This field may not be blank."
    elif max_length is not None and len(text) > max_length:
        problem = f"Ensure this field has no more than {max_length} characters."
    elif "\x00" in text:
        problem = "Null characters are not allowed."
    elif surrogate := _SURROGATE.search(text):
        problem = f"Surrogate characters are not allowed: U+{ord(surrogate.group()):X}."
    else:
        return text
    problems[key] = [problem]
    return None


def _json_object(item: Mapping[str, Any], key: str, problems: Problems) -> dict[str, Any] | None:
    if key not in item:
        return None
    value = item[key]
    if value is None:
        problems[key] = ["This field may not be null."]
    elif not isinstance(value, dict):
        problems[key] = ["Expected a JSON object."]
    else:
        return value
    return None


def _client_ip(item: Mapping[str, Any], problems: Problems) -> str | None:
    """The address in canonical form; absent, null and empty all mean none."""
    value = item.get("client_ip")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems["client_ip"] = ["Not a valid string."]
        return None
    try:
        return canonical_ip(str(value).strip())
    except ValueError as exc:
        problems["client_ip"] = [str(exc)]
    return None


def _uuid(item: Mapping[str, Any], key: str, problems: Problems) -> UUID | None:
    value = item.get(key)
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        problems[key] = ["Must be a valid UUID."]
    return None


def _datetime(item: Mapping[str, Any], key: str, problems: Problems) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None:
        problems[key] = ["Datetime has wrong format. Use ISO 8601."]
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def as_action(action: str) -> str:
    """A known action as is; anything else as ``custom_<name>``."""
    if action in ACTION_VALUES:
        return str(action)
    return f"{EventAction.CUSTOM_PREFIX}{action}"


# --- Events this application observes ---------------------------------------------------------


def record_event(
    *,
    action: str,
    app: str,
    context: Mapping[str, Any] | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
    client_ip: str | None = None,
    brand: Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
) -> Event:
    """Write one event in the current transaction and return it; a seal is requested for
    when the transaction commits.

    ``action``: a known action, anything else becomes ``custom_<action>``. Inside a request
    (given, or the current one) the event carries the request's path, user, client address,
    brand and geo. ``user`` (else the :func:`~auditlog.context.acting_user`) names who acted;
    outside a request with nobody named, the event has no user. ``exception`` adds its
    message and traceback. The redaction policy is applied once, here. Raises
    :class:`EventsRejected` for an action or app no event may have.
    """
    event = _build(
        action=action,
        app=app,
        context=context,
        user=user,
        request=request,
        client_ip=client_ip,
        brand=brand,
        exception=exception,
    )
    return _insert(event)


def build_event(
    *,
    action: str,
    app: str | None = None,
    context: Mapping[str, Any] | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
    client_ip: str | None = None,
    brand: Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
) -> Event:
    """The event :func:`record_event` would write, unsaved (to show or send, never to
    store: only :func:`record_event` stores it). ``app`` defaults to the calling module
    (authentik's rule)."""
    if app is None:
        app = _caller_app(inspect.currentframe())
    return _build(
        action=action,
        app=app,
        context=context,
        user=user,
        request=request,
        client_ip=client_ip,
        brand=brand,
        exception=exception,
    )


def _build(
    *,
    action: str,
    app: str,
    context: Mapping[str, Any] | None,
    user: Any,
    request: HttpRequest | None,
    client_ip: str | None,
    brand: Mapping[str, Any] | None,
    exception: BaseException | None,
) -> Event:
    request = request if request is not None else current_request()
    actor = user if user is not None else current_actor()
    values = dict(context or {})  # the redaction below makes the deep copy
    if exception is not None:
        values.setdefault("message", str(exception))
        values["exception"] = exception_to_dict(exception)
    event_user: dict[str, Any] = {}
    event_brand = dict(brand) if brand is not None else None
    address = client_ip
    if request is not None:
        values["http_request"] = http_request_context(request)
        request_brand = getattr(request, "brand", None)
        if event_brand is None and request_brand:  # a lazy object wrapping None is falsy
            event_brand = model_to_dict(request_brand)
        request_user = getattr(request, "user", None)
        if request_user is not None:
            event_user = get_user(request_user)
        if address is None:
            address = request_client_ip(request)
        if not app:
            match = getattr(request, "resolver_match", None)
            app = (match.app_name if match else "") or ""
    if address is not None:
        enrich_context(values, address)
    if actor is not None:
        event_user = dict(actor) if isinstance(actor, Mapping) else get_user(actor)
    action = as_action(action)
    if problem := action_problem(action):
        raise EventsRejected({"action": [problem]})
    if not app:
        raise EventsRejected({"app": ["This field is required."]})
    redacted_user, redacted_context, redacted_brand = redact_event(
        user=event_user, context=values, brand=event_brand
    )
    event = Event(
        action=action,
        app=app,
        user=redacted_user,
        context=redacted_context,
        client_ip=address,
        created=timezone.now(),
    )
    if redacted_brand is not None:
        event.brand = redacted_brand
    event._redacted = True  # type: ignore[attr-defined]  # Event.save need not redact again
    return event


def _insert(event: Event) -> Event:
    """The single-event write: an ORM insert (``post_save`` tells the notification rules),
    and a seal requested for when the transaction commits."""
    event.save(force_insert=True)
    request_seal()
    user = (event.user or {}).get("username")
    fields = {"event_pk": str(event.pk), "action": event.action, "event_user": user}
    logger.info("event recorded", extra=fields)
    return event


# --- Events given whole ------------------------------------------------------------------------


def ingest_event(event: ValidEvent, *, brand: Mapping[str, Any] | None = None) -> Event:
    """Write one event another system gave whole (the API's single create) and return it.

    ``event`` comes from :func:`validate_event_item`; the server sets pk, created and
    expires. Without a brand of its own it gets ``brand`` (the request's), else the default
    brand. The redaction policy is applied once, here.
    """
    user, context, event_brand = redact_event(
        user=event["user"],
        context=event["context"],
        brand=event["brand"] if event["brand"] is not None else brand,
    )
    row = Event(
        action=event["action"],
        app=event["app"],
        user=user,
        context=context,
        client_ip=event["client_ip"],
    )
    if event_brand is not None:
        row.brand = event_brand
    row._redacted = True  # type: ignore[attr-defined]
    return _insert(row)


def record_events(
    items: Iterable[EventItem],
    *,
    brand: Mapping[str, Any] | None = None,
    keep_identity: bool = False,
    refuse_unknown: bool = True,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> list[EventRow]:
    """Validate every item (see :class:`EventItem`), then write them all in one transaction
    (``COPY`` on PostgreSQL) and return what was written; a seal is requested for when the
    transaction commits.

    All or nothing: any invalid item raises :class:`EventsRejected` with the problems of
    every invalid item by index, and nothing is written. The redaction policy is applied
    once per event. An event without a brand of its own gets ``brand``, else the default
    brand. By default the server sets pk, created and expires. ``keep_identity`` (an import
    of another system's events) keeps a given ``pk``, ``created`` and ``expires`` (else
    ``created`` plus the retention) and skips events whose pk is stored already or repeats
    within the batch, so importing the same events again adds nothing.
    """
    items = list(items)
    valid: list[ValidEvent] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        problems, event = validate_event_item(
            item, refuse_unknown=refuse_unknown, keep_identity=keep_identity
        )
        if event is None:
            errors[str(index)] = problems
        else:
            valid.append(event)
    if errors:
        raise EventsRejected(errors)
    now = timezone.now()
    retention = current_retention()
    fallback_brand = dict(brand) if brand is not None else default_event_brand()
    stored = _stored_pks([event["pk"] for event in valid if event["pk"] is not None])
    rows: list[EventRow] = []
    for event in valid:
        pk = event["pk"] or uuid.uuid4()
        if pk in stored:
            continue
        stored.add(pk)
        created = event["created"] or now
        user, context, event_brand = redact_event(
            user=event["user"],
            context=event["context"],
            brand=event["brand"] if event["brand"] is not None else fallback_brand,
        )
        rows.append(
            EventRow(
                event_uuid=pk,
                user=user,
                action=event["action"],
                app=event["app"],
                context=context,
                client_ip=event["client_ip"],
                created=created,
                brand=event_brand or {},
                expires=event["expires"] or created + retention,
            )
        )
    with transaction.atomic():
        write_events(rows, batch_size=batch_size, progress=progress)
        request_seal()  # chained within seconds, like events recorded one by one
    logger.info("%d events recorded", len(rows))
    for row in rows if logger.isEnabledFor(logging.DEBUG) else ():
        logger.debug(
            "event recorded", extra={"event_pk": str(row.event_uuid), "action": row.action}
        )
    return rows


def _stored_pks(pks: list[UUID], chunk: int = 1_000) -> set[UUID]:
    """Which of ``pks`` are stored already (an import run again)."""
    stored: set[UUID] = set()
    for start in range(0, len(pks), chunk):
        part = pks[start : start + chunk]
        stored.update(Event.objects.filter(pk__in=part).values_list("pk", flat=True))
    return stored


# --- Small helpers of the builder ---------------------------------------------------------------


def _caller_app(frame: Any) -> str:
    """The calling module's name, replaced by the closest installed app's name only when that
    app name starts with the module name (authentik's rule)."""
    caller = frame.f_back if frame is not None else None
    module = caller.f_globals.get("__name__", "") if caller is not None else ""
    module = module or sys.modules[__name__].__name__
    app_names = [config.name for config in apps.get_app_configs()]
    matches = difflib.get_close_matches(module, app_names, n=1)
    if matches and matches[0].startswith(module):
        return matches[0]
    return module
