"""Writes with consequences: recording events, retention, housekeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from auditlog import chain
from auditlog.capture import current_actor, current_request
from auditlog.models import (
    ACTION_VALUES,
    Event,
    EventAction,
    EventChainLink,
    EventChainPending,
    Notification,
)
from auditlog.sanitize import sanitize

logger = logging.getLogger(__name__)

RETENTION_BATCH_SIZE = 10_000


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


def delete_expired_events(
    *,
    now: datetime | None = None,
    batch_size: int = RETENTION_BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Delete every expired event in set-based batches; return how many were deleted.

    Each batch is its own short transaction, so concurrent writers never wait long, and a
    batch is deleted whole or not at all. Notifications keep existing with their event link
    cleared. Queued events are sealed first; each batch deletes the events' chain links (and
    queue entries) with them and stores signed prune records of the chain ranges it removes,
    one per run of consecutive sequences, in the same transaction, so the event chain stays
    verifiable. Batches go oldest first, which is (nearly) chain order: a batch removes a few
    long runs of the chain, not thousands of scattered ones.
    """
    now = now or timezone.now()
    chain.seal_pending()
    delete_batch = _delete_batch_sql if connection.vendor == "postgresql" else _delete_batch_orm
    total = 0
    # Each batch starts at the last expiry time of the one before: walking the expiry index
    # from its start again would step over every entry deleted so far, a cost that grows
    # with the square of the backlog. Whatever expired before that time was in an earlier
    # batch (or was written since this call started; the next run takes it).
    since: datetime | None = None
    while True:
        with transaction.atomic():
            chain.lock_chain()  # no sealer may chain an event this batch deletes
            batch = delete_batch(now, since, batch_size)
        if not batch.taken:
            break
        total += batch.deleted
        if progress is not None:
            progress(batch.deleted)
        if batch.taken < batch_size:
            break
        since = batch.last_expires
    if total:
        logger.info("Expired %d Events", total)
    return total


class _Batch(NamedTuple):
    taken: int
    deleted: int
    last_expires: datetime | None


def _delete_batch_orm(now: datetime, since: datetime | None, batch_size: int) -> _Batch:
    """One batch, in the caller's transaction, of events that expired by ``now`` (from
    ``since`` on)."""
    expired = Event.objects.expired(now)
    if since is not None:
        expired = expired.filter(expires__gte=since)
    rows = list(
        expired.order_by("expires", "created", "event_uuid").values_list("pk", "expires")[
            :batch_size
        ]
    )
    if not rows:
        return _Batch(0, 0, since)
    deleted = _delete_events([pk for pk, _ in rows])
    return _Batch(len(rows), deleted, rows[-1][1])


def _delete_events(pks: list[Any]) -> int:
    """Delete the events ``pks`` with their chain links and signed prune records, clearing
    the notifications' references; in the caller's transaction, after ``chain.lock_chain``."""
    keys = chain.keys_in(pks)
    Notification.objects.filter(event_id__in=keys).update(event=None)
    chain.remove_from_chain(pks)
    return int(Event.objects.filter(pk__in=keys)._raw_delete(connection.alias))


def _quoted(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# One statement does a whole batch on the server: the batch's events by physical address (the
# cheapest delete), their links, queue entries and notifications' references, and only the
# ends of the removed runs of the chain come back (see chain.RUN_ENDS_SQL). The links removed
# are exactly those of the events this statement deleted. The links are looked up with one
# array, which the index walks in key order (cheaper than 10,000 separate probes); the queue
# and the notifications are small and may have no useful index, so they get a join instead.
# Only table names are interpolated.
_BATCH_SQL = f"""
WITH batch AS MATERIALIZED (
    SELECT ctid, expires FROM {_quoted(Event)}
    WHERE expiring AND expires <= %s AND expires >= COALESCE(%s::timestamptz, '-infinity')
    ORDER BY expires, created, event_uuid
    LIMIT %s
), gone AS (
    DELETE FROM {_quoted(Event)} WHERE ctid = ANY(ARRAY(SELECT ctid FROM batch))
    RETURNING event_uuid
), unlinked AS (
    DELETE FROM {_quoted(EventChainLink)}
    WHERE event_uuid = ANY(ARRAY(SELECT event_uuid FROM gone))
    RETURNING sequence, prev_hash, chain_hash
), unqueued AS (
    DELETE FROM {_quoted(EventChainPending)} WHERE event_uuid IN (SELECT event_uuid FROM gone)
), cleared AS (
    UPDATE {_quoted(Notification)} SET event_id = NULL
    WHERE event_id IN (SELECT event_uuid FROM gone)
), ends AS (
    SELECT * FROM ({chain.RUN_ENDS_SQL.format(links="unlinked")}) AS links
    WHERE starts_run OR ends_run
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone),
    (SELECT max(expires) FROM batch),
    ends.sequence, ends.prev_hash, ends.chain_hash, ends.starts_run, ends.ends_run
FROM (SELECT) AS counts LEFT JOIN ends ON true
ORDER BY ends.sequence
"""  # noqa: S608


def _delete_batch_sql(now: datetime, since: datetime | None, batch_size: int) -> _Batch:
    """One batch in one statement (PostgreSQL), in the caller's transaction, of events that
    expired by ``now`` (from ``since`` on)."""
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_SQL, [now, since, batch_size])
        rows = cursor.fetchall()
    taken, deleted, last_expires = rows[0][:3]
    chain.record_runs(chain.runs_from_ends(row[3:] for row in rows if row[3] is not None))
    return _Batch(int(taken), int(deleted), last_expires or since)


def erase_user_events(
    user_pk: Any, user_uuid: Any, *, batch_size: int = RETENTION_BATCH_SIZE
) -> int:
    """GDPR erasure of a deleted user: delete every event by them (``user.pk``) and about
    them (``context.subject_uuid``); return how many. Events that merely mention them stay.

    Like retention, in short batches that each delete the events with their chain links and
    store signed prune records of the removed ranges, so the chain stays verifiable.
    """
    hex_uuid = user_uuid.hex if isinstance(user_uuid, UUID) else str(user_uuid).replace("-", "")
    about = models.Q(user__pk=user_pk) | models.Q(
        context__subject_uuid__in=[hex_uuid, str(UUID(hex_uuid))]
    )
    total = 0
    while True:
        with transaction.atomic():
            chain.lock_chain()
            pks = list(
                Event.objects.filter(about).order_by().values_list("pk", flat=True)[:batch_size]
            )
            if not pks:
                break
            total += _delete_events(pks)
        if len(pks) < batch_size:
            break
    if total:
        logger.info("Erased %d events of deleted user %s", total, user_pk)
    return total


def clean_up_notifications() -> int:
    """Delete notifications that were read or whose event is gone."""
    deleted, _ = Notification.objects.filter(seen=True).delete()
    orphans, _ = Notification.objects.filter(event__isnull=True).delete()
    return deleted + orphans
