"""Delivery of streams: every event a destination's filter matches, in chain order, at least
once, from the destination's stored position.

One worker at a time delivers to a destination: it takes the destination's lease (a
conditional UPDATE of ``lease_until``/``lease_holder``, which works the same on SQLite and
PostgreSQL), sends a batch, and only once the receiver accepted it moves ``position`` on, in an
UPDATE that also requires it still holds the lease. A worker that dies mid-batch leaves the
position where it was: when its lease expires another sends that batch again (the only case
of a duplicate). A failed batch is retried after an exponential backoff, never skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets as random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from auditlog.context import audit_ignore
from auditlog.models import Event, EventAction, EventChainLink
from auditlog.positions import Page, events_after, head_position
from auditlog.representation import event_json
from auditlog.search import EventSearchSchema, compile_query
from auditlog.services import record_event
from streams import secrets
from streams.formats import StreamRecord, get_format
from streams.models import Destination
from streams.transports import DeliveryFailed, Outgoing, sender_for
from streams.verify_stream import canonical, find_chain

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "hmac"
# The health counts the lag up to this many events: a page of many far-behind destinations
# stays quick, and "100,000+" says enough.
LAG_COUNT_LIMIT = 100_000


def matching_events(destination: Destination) -> QuerySet[Event]:
    events = Event.objects.all()
    if destination.filter.strip():
        events = events.filter(compile_query(destination.filter, EventSearchSchema))
    return events


def sign(line: str, key: str) -> str:
    """``line`` with ``hmac`` added to its chain object: HMAC-SHA256 under ``key`` of the
    record's canonical JSON without it (see :mod:`streams.verify_stream`). Lines that are not
    JSON with a chain object (CEF) go unsigned."""
    if not key or not line.startswith("{"):
        return line
    document = orjson.loads(line)
    chain = find_chain(document)
    if chain is None:
        return line
    # The canonical bytes are the verification script's own (stdlib json); the line itself
    # only has to parse back to the same document, so orjson writes it.
    chain[SIGNATURE_FIELD] = hmac.new(key.encode(), canonical(document), hashlib.sha256).hexdigest()
    try:
        return orjson.dumps(document).decode()
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Run:
    """What one delivery run did."""

    sent: int = 0
    batches: int = 0
    error: str = ""
    more: bool = False  # stopped with events left (time budget): run again at once
    claimed: bool = True


def _claim(pk: Any, holder: str, now: datetime) -> bool:
    return bool(
        Destination.objects.filter(pk=pk, paused=False)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .update(lease_until=now + settings.STREAMS_LEASE, lease_holder=holder)
    )


def _records(destination: Destination, page: Page) -> list[StreamRecord]:
    records = []
    previous = destination.last_sent_sequence
    for item in page.items:
        records.append(
            StreamRecord(
                event=event_json(item.event, UTC),
                sequence=item.sequence,
                chain_hash=item.chain_hash,
                prev_hash=item.prev_hash,
                previous_sequence=previous,
            )
        )
        previous = item.sequence
    return records


def deliver(destination_id: Any, *, budget: float | None = None) -> Run:
    """Send what ``destination_id`` has not received yet, batch after batch, until it is
    caught up, a batch fails, or ``budget`` seconds (``STREAMS_RUN_BUDGET``) have passed.
    Returns at once when the destination is paused, waiting for a retry, or leased by
    another worker."""
    # Delivery bookkeeping (lease, position, counters, backoff) is not an audited change:
    # captured, each batch sent would record events that are sent in turn.
    with audit_ignore():
        return _deliver(destination_id, budget=budget)


def _deliver(destination_id: Any, *, budget: float | None) -> Run:
    holder = random.token_hex(8)
    if not _claim(destination_id, holder, timezone.now()):
        return Run(claimed=False)
    run = Run()
    deadline = time.monotonic() + (settings.STREAMS_RUN_BUDGET if budget is None else budget)
    mine = Destination.objects.filter(pk=destination_id, lease_holder=holder)
    try:
        while True:
            destination = Destination.objects.get(pk=destination_id)
            if destination.paused or destination.lease_holder != holder:
                return run
            try:
                fmt = get_format(destination.format)
                page = events_after(
                    matching_events(destination), destination.position, destination.batch_size
                )
            except Exception as exc:  # a format or filter that no longer works: shown too
                logger.exception("Stream %s: the events could not be read", destination)
                run.error = f"The destination's format or filter no longer works: {exc}"
                _failed(destination, holder, run.error)
                return run
            if not page.items:
                if page.next_position > destination.position and mine.update(
                    position=page.next_position, lease_until=timezone.now() + settings.STREAMS_LEASE
                ):
                    if time.monotonic() > deadline:
                        run.more = True
                        return run
                    continue
                return run
            records = _records(destination, page)
            try:
                key = secrets.decrypt(destination.signing_key)
                batch = [Outgoing(record, sign(fmt.encode(record), key)) for record in records]
                sender_for(destination, fmt).send(batch)
            except DeliveryFailed as exc:
                run.error = str(exc)
            except Exception as exc:  # a bug or a secret that no longer decrypts: shown too
                logger.exception("Stream %s: the batch could not be built or sent", destination)
                run.error = str(exc) or type(exc).__name__
            if run.error:
                _failed(destination, holder, run.error)
                return run
            now = timezone.now()
            accepted = mine.update(
                position=page.next_position,
                last_sent_sequence=records[-1].sequence,
                events_sent=F("events_sent") + len(records),
                last_success=now,
                last_error="",
                attempts=0,
                retry_at=None,
                failing_since=None,
                failure_reported=False,
                lease_until=now + settings.STREAMS_LEASE,
            )
            if not accepted:  # replayed or re-leased meanwhile: the new owner goes on
                return run
            run.sent += len(records)
            run.batches += 1
            if time.monotonic() > deadline:
                run.more = True
                return run
    finally:
        mine.update(lease_until=None, lease_holder="")


def _failed(destination: Destination, holder: str, error: str) -> None:
    """Keep the position, retry after an exponential backoff, and report a destination that
    has been failing longer than ``STREAMS_FAILURE_THRESHOLD`` once (not once per retry)."""
    now = timezone.now()
    attempts = destination.attempts + 1
    delay = min(
        settings.STREAMS_RETRY_BASE.total_seconds() * 2 ** (attempts - 1),
        settings.STREAMS_RETRY_MAX.total_seconds(),
    )
    failing_since = destination.failing_since or now
    report = (
        not destination.failure_reported
        and now - failing_since >= settings.STREAMS_FAILURE_THRESHOLD
    )
    logger.warning("Stream %s: batch refused (%s); retry in %.0fs", destination, error, delay)
    updated = Destination.objects.filter(pk=destination.pk, lease_holder=holder).update(
        attempts=attempts,
        retry_at=now + timedelta(seconds=delay),
        last_error=error,
        last_error_at=now,
        failing_since=failing_since,
        failure_reported=destination.failure_reported or report,
    )
    if updated and report:
        record_event(
            action=EventAction.SYSTEM_TASK_EXCEPTION,
            app="streams",
            context={
                "message": f"Stream {destination.name} has been failing since "
                f"{failing_since.isoformat()}: {error}",
                "task": "deliver_stream",
                "destination": destination.name,
                "error": error,
                "position": destination.position,
            },
        )


def deliverable_ids() -> list[Any]:
    """Destinations that may send now: not paused, not waiting to retry, and not held by a
    run (which goes on until it is caught up; the schedule covers what it may just miss)."""
    now = timezone.now()
    return list(
        Destination.objects.filter(paused=False)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", flat=True)
    )


# --- Pause, resume, replay ------------------------------------------------------------------


def pause(destination: Destination) -> None:
    Destination.objects.filter(pk=destination.pk).update(paused=True)


def resume(destination: Destination) -> None:
    """Resume, and retry at once (without waiting for the backoff)."""
    Destination.objects.filter(pk=destination.pk).update(paused=False, retry_at=None)


def position_at(moment: datetime) -> int:
    """The position from which events created at or after ``moment`` are sent."""
    # The link's copy of its event's created: no join, and only the months from ``moment``
    # are read where the links are partitioned.
    first = EventChainLink.objects.filter(event_created__gte=moment).aggregate(
        first=Min("sequence")
    )["first"]
    return head_position() if first is None else first - 1


def replay(
    destination: Destination, *, from_time: datetime | None = None, from_position: int | None = None
) -> int:
    """Send again from sequence ``from_position`` (inclusive) or from the first event created
    at or after ``from_time``; returns the new position. A batch in flight is not counted:
    its worker loses the lease. The first replayed record has ``previous_sequence: null``."""
    if (from_time is None) == (from_position is None):
        raise ValueError("Give either a time or a position to replay from.")
    position = position_at(from_time) if from_time is not None else max(from_position - 1, 0)  # type: ignore[operator]
    Destination.objects.filter(pk=destination.pk).update(
        position=position,
        last_sent_sequence=None,
        attempts=0,
        retry_at=None,
        lease_until=None,
        lease_holder="",
    )
    return position


# --- Health ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    lag_events: int  # at most LAG_COUNT_LIMIT (then lag_events_exact is False)
    lag_seconds: float
    last_success: datetime | None
    last_error: str
    last_error_at: datetime | None
    failing_since: datetime | None
    retry_at: datetime | None
    position: int
    head: int

    @property
    def lag_events_exact(self) -> bool:
        return self.lag_events < LAG_COUNT_LIMIT

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None

        return {
            "lag_events": self.lag_events,
            "lag_events_exact": self.lag_events_exact,
            "lag_seconds": self.lag_seconds,
            "last_success": iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "failing_since": iso(self.failing_since),
            "retry_at": iso(self.retry_at),
            "position": self.position,
            "head": self.head,
        }


def health(destination: Destination) -> Health:
    """How far behind a destination is: the matching events sealed after its position, and
    the age of the oldest of them (0 when caught up)."""
    pending = EventChainLink.objects.filter(sequence__gt=destination.position)
    matching = matching_events(destination).filter(event_uuid__in=pending.values("event_uuid"))
    oldest = matching.aggregate(oldest=Min("created"))["oldest"]
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return Health(
        lag_events=matching[:LAG_COUNT_LIMIT].count(),
        lag_seconds=round(max(lag, 0.0), 3),
        last_success=destination.last_success,
        last_error=destination.last_error,
        last_error_at=destination.last_error_at,
        failing_since=destination.failing_since,
        retry_at=destination.retry_at,
        position=destination.position,
        head=head_position(),
    )


def set_secrets(
    destination: Destination, *, auth_header_value: str | None, signing_key: str | None
) -> None:
    """Encrypt new secrets onto ``destination`` (``None``: keep the stored one)."""
    if auth_header_value is not None:
        destination.auth_header_value = secrets.encrypt(auth_header_value)
    if signing_key is not None:
        destination.signing_key = secrets.encrypt(signing_key)
