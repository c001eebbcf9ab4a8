"""Importing an authentik instance's events: the pull (a backfill, then following new events)
and the push (authentik's notification webhook transport).

Every imported event is written by :func:`auditlog.services.record_events` with
``keep_identity``: authentik's ``pk`` and ``created`` are kept, the redaction policy is
applied once, an event whose pk is stored already is skipped, the page is written all or
nothing, and the chain is asked for a seal. Each event carries
``context["imported"] = {"source": <name>, "source_pk": <pk>, "via": "pull"|"webhook"}``.

Decisions (README, "Importing from authentik"):

* An action the target release does not know (a newer authentik's ``user_created``) is kept
  as ``custom_<action>``, the original in ``context.imported.action``: nothing is lost and
  nothing blocks the sync. An event that is invalid otherwise (no pk, a bad address, ...) is
  skipped and counted; the reason is on the source (``last_skip``).
* The pull's position is the newest ``created`` stored, committed with each page. Every run
  starts ``SOURCES_SYNC_OVERLAP`` before it, so an event authentik commits late, with an
  older ``created``, is still read; pks already stored are skipped.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from auditlog.context import audit_ignore
from auditlog.models import EventAction, is_valid_action
from auditlog.services import EventItem, EventsRejected, record_events, validate_event_item
from sources import secrets
from sources.client import AuthentikClient, SourceError
from sources.models import AuthentikSource

logger = logging.getLogger(__name__)

IMPORTED_KEY = "imported"
EVENT_KEYS = ("pk", "action", "app", "user", "context", "client_ip", "created", "brand")
LEASE = timedelta(minutes=10)  # a sync silent this long (its process died) may be taken over
WEBHOOK_ACTION = f"{EventAction.CUSTOM_PREFIX}authentik_notification"


@dataclass
class SyncResult:
    source: str
    pages: int = 0
    read: int = 0
    imported: int = 0
    skipped: int = 0
    error: str = ""
    busy: bool = False  # another sync of this source holds the lease


@dataclass
class Prepared:
    items: list[EventItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why, one per skipped event


# --- Managing sources --------------------------------------------------------------------------


def create_source(
    *,
    name: str,
    url: str,
    token: str,
    enabled: bool = True,
    page_size: int = 500,
    verify_tls: bool = True,
) -> tuple[AuthentikSource, str]:
    """Store a new source with its API token encrypted; return it and its webhook token,
    which is shown this once (only its digest is kept)."""
    webhook_token = secrets.new_webhook_token()
    source = AuthentikSource.objects.create(
        name=name,
        url=url,
        token=secrets.encrypt(token),
        webhook_token_digest=secrets.digest(webhook_token),
        enabled=enabled,
        page_size=page_size,
        verify_tls=verify_tls,
    )
    return source, webhook_token


def rotate_webhook_token(source: AuthentikSource) -> str:
    """Give ``source`` a new webhook token (the old one stops working); return it, once."""
    webhook_token = secrets.new_webhook_token()
    source.webhook_token_digest = secrets.digest(webhook_token)
    source.save(update_fields=["webhook_token_digest"])
    return webhook_token


# --- Turning authentik's events into items for the recording service ----------------------------


def prepare(remote_events: Iterable[Any], *, source_name: str, via: str) -> Prepared:
    """authentik's event JSON as :class:`~auditlog.services.EventItem` s marked as imported;
    an unknown action becomes ``custom_<action>``; events that stay invalid are left out,
    with the reason."""
    prepared = Prepared()
    for remote in remote_events:
        if not isinstance(remote, Mapping):
            prepared.skipped.append(f"not an event object: {str(remote)[:100]}")
            continue
        pk = remote.get("pk")
        item = {key: remote[key] for key in EVENT_KEYS if key in remote}
        context = item.get("context")
        context = dict(context) if isinstance(context, Mapping) else {}
        marker: dict[str, Any] = {"source": source_name, "source_pk": str(pk), "via": via}
        action = item.get("action")
        if isinstance(action, str) and not is_valid_action(action):
            marker["action"] = action
            item["action"] = f"{EventAction.CUSTOM_PREFIX}{_action_name(action)}"
        context[IMPORTED_KEY] = marker
        item["context"] = context
        if "client_ip" in item and item["client_ip"] in ("", None):
            item["client_ip"] = None
        problems, valid = validate_event_item(item, refuse_unknown=False, keep_identity=True)
        if valid is not None and valid["pk"] is None:
            problems = {"pk": ["This field is required (imported events keep their pk)."]}
        if problems or valid is None:
            prepared.skipped.append(f"event {pk}: {_problem_text(problems)}")
            continue
        prepared.items.append(cast(EventItem, item))
    return prepared


def _action_name(action: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in action)
    return cleaned.removeprefix(EventAction.CUSTOM_PREFIX) or "unknown"


def _problem_text(problems: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in problems.items()
    )


def _created(remote: Mapping[str, Any]) -> datetime | None:
    value = remote.get("created")
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


# --- The pull -------------------------------------------------------------------------------


def sync_source(
    *,
    source_id: UUID | str,
    full: bool = False,
    page_size: int | None = None,
    progress: Callable[[int, int | None], object] | None = None,
    between_pages: Callable[[int], object] | None = None,
) -> SyncResult:
    """Import the source's events from authentik, page by page in ``created`` order, and
    return what happened.

    Without ``full`` it starts ``SOURCES_SYNC_OVERLAP`` before the stored position (from
    the beginning the first time); ``full`` reads everything again. Each page's new events
    and the new position are committed together, so a run that dies loses nothing and
    doubles nothing: the next run resumes from the last committed page. Runs of one source
    never overlap (a lease, renewed each page). A failure is stored on the source, in the
    other side's words, and returned; the pages committed before it stay.
    ``progress(events_read, total)`` is called after each page; ``between_pages(n)`` after
    the n-th page is committed (tests use it to crash there).
    """
    source = AuthentikSource.objects.get(pk=source_id)
    result = SyncResult(source=source.name)
    if not _claim(source):
        result.busy = True
        return result
    try:
        if page_size is not None:
            source.page_size = page_size
        _pull(source, result, full=full, progress=progress, between_pages=between_pages)
    except (SourceError, secrets.SecretUnreadable) as exc:
        result.error = str(exc)
    except BaseException as exc:  # the process goes on failing; the status page says so
        result.error = f"The sync stopped: {type(exc).__name__}: {exc}"
        raise
    finally:
        now = timezone.now()
        with audit_ignore():  # sync bookkeeping, not an audited change
            AuthentikSource.objects.filter(pk=source.pk).update(
                sync_lease_until=None,
                sync_holder="",
                last_sync_finished=now,
                last_success=now if not result.error else F("last_success"),
                last_error=result.error,
                last_error_at=now if result.error else F("last_error_at"),
            )
    if result.error:
        logger.warning("Sync of source %s failed: %s", source.name, result.error)
    else:
        logger.info(
            "Synced source %s: %d read, %d imported, %d skipped",
            source.name,
            result.read,
            result.imported,
            result.skipped,
        )
    return result


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(holder: str) -> bool:
    """Whether the lease's holder was a process on this machine that no longer runs (killed
    mid-sync): its lease need not be waited out."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim(source: AuthentikSource) -> bool:
    """Take the source's sync lease with a conditional update: free, expired, or held by a
    process of this machine that died."""
    now = timezone.now()
    free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
    holder = (
        AuthentikSource.objects.filter(pk=source.pk).values_list("sync_holder", flat=True).first()
    )
    if holder and _holder_is_dead(holder):
        free |= Q(sync_holder=holder)
    with audit_ignore():  # sync bookkeeping, not an audited change
        claimed = (
            AuthentikSource.objects.filter(pk=source.pk)
            .filter(free)
            .update(sync_lease_until=now + LEASE, sync_holder=_holder(), last_sync_started=now)
        )
    return claimed == 1


def _pull(
    source: AuthentikSource,
    result: SyncResult,
    *,
    full: bool,
    progress: Callable[[int, int | None], object] | None,
    between_pages: Callable[[int], object] | None,
) -> None:
    client = AuthentikClient(
        source.url, secrets.decrypt(source.token), verify_tls=source.verify_tls
    )
    position = source.position
    cursor = None if full or position is None else position - settings.SOURCES_SYNC_OVERLAP
    page_number = 1
    total: int | None = None
    while True:
        page = client.events_page(since=cursor, page=page_number, page_size=source.page_size)
        total = page.count if total is None else total
        prepared = prepare(page.results, source_name=source.name, via="pull")
        created = [moment for moment in map(_created, page.results) if moment is not None]
        newest = max(created, default=None)
        with transaction.atomic():
            try:
                written = record_events(prepared.items, keep_identity=True, refuse_unknown=False)
            except EventsRejected as exc:  # prepare() validated each one; never expected
                raise SourceError(f"The recording service refused a page: {exc.errors}") from None
            if newest is not None and (position is None or newest > position):
                position = newest
            updates: dict[str, Any] = {
                "position": position,
                "events_imported": F("events_imported") + len(written),
                "sync_lease_until": timezone.now() + LEASE,
            }
            if prepared.skipped:
                updates["events_skipped"] = F("events_skipped") + len(prepared.skipped)
                updates["last_skip"] = "\n".join(prepared.skipped[-20:])
            with audit_ignore():  # sync bookkeeping, not an audited change
                AuthentikSource.objects.filter(pk=source.pk).update(**updates)
        result.pages += 1
        result.read += len(page.results)
        result.imported += len(written)
        result.skipped += len(prepared.skipped)
        for reason in prepared.skipped:
            logger.warning("Source %s: skipped %s", source.name, reason)
        if progress is not None:
            progress(result.read, total)
        if between_pages is not None:
            between_pages(result.pages)
        if not page.has_next or not page.results or newest is None:
            return
        # Keyset paging: the next page starts at this page's newest second (pks already
        # stored are skipped). Only when a whole page shares that second does it turn the
        # page of the same search instead.
        if cursor is not None and _second(newest) <= _second(cursor):
            page_number += 1
        else:
            cursor = newest
            page_number = 1


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def enabled_source_ids() -> list[UUID]:
    """The sources the scheduler follows."""
    return list(AuthentikSource.objects.filter(enabled=True).values_list("pk", flat=True))


# --- The push ------------------------------------------------------------------------------


class WebhookRejected(ValueError):
    """The webhook body cannot be stored; the message says why (answered with a 400)."""


def receive_webhook(*, source: AuthentikSource, body: Any) -> tuple[int, int]:
    """Store what authentik's webhook transport sent; return (stored, already stored).

    A body with the whole event (the mapping in the README: ``{"event": {...}}``, or the
    event's fields at the top level) is imported like the pull imports it, idempotent by pk.
    authentik's default body (``body``, ``severity``, ``user_email``, ``user_username`` and
    ``event_user_*``) has no event pk: it is stored as a ``custom_authentik_notification``
    event each time it arrives.
    """
    if not isinstance(body, Mapping):
        raise WebhookRejected("Expected a JSON object (authentik's webhook body).")
    event = body.get("event") if isinstance(body.get("event"), Mapping) else None
    if event is None and "pk" in body and "action" in body:
        event = body
    if event is not None:
        prepared = prepare([event], source_name=source.name, via="webhook")
        if prepared.skipped:
            raise WebhookRejected(prepared.skipped[0])
        written = record_events(prepared.items, keep_identity=True, refuse_unknown=False)
    elif "body" in body:
        written = record_events([_notification_item(source, body)])
    else:
        raise WebhookRejected(
            "Neither an event (send the whole event, see the README's webhook mapping) nor "
            "authentik's default webhook body (body, severity, user_email, user_username)."
        )
    with audit_ignore():  # sync bookkeeping, not an audited change
        AuthentikSource.objects.filter(pk=source.pk).update(
            events_pushed=F("events_pushed") + len(written), last_push=timezone.now()
        )
    already = (1 - len(written)) if event is not None else 0
    return len(written), already


def _notification_item(source: AuthentikSource, body: Mapping[str, Any]) -> EventItem:
    def text(key: str) -> str:
        value = body.get(key)
        return value if isinstance(value, str) else ""

    user: dict[str, Any] = {}
    if text("event_user_username") or text("event_user_email"):
        user = {"username": text("event_user_username"), "email": text("event_user_email")}
    return EventItem(
        action=WEBHOOK_ACTION,
        app="authentik.events.transports",
        user=user,
        context={
            "message": text("body"),
            "severity": text("severity"),
            "notified_user": {"username": text("user_username"), "email": text("user_email")},
            IMPORTED_KEY: {"source": source.name, "via": "webhook"},
        },
    )
