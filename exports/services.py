"""Data exports: requesting one, and building its file in the background.

The file is built from the very list the requester would get from the API: the model's listing
(``auditlog.listing`` / ``directory.listing``, which the list endpoint filters through too)
selects the rows for the stored query parameters, as the requester, after checking that the
requester may still read the list. Nothing about filtering is re-implemented here, and nothing
here depends on the API's views or serializers.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import partial
from typing import IO, Any
from uuid import UUID

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files import File
from django.db import DatabaseError, connection, connections, models, transaction
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import capfirst
from djangoql.exceptions import DjangoQLError
from kombu.exceptions import OperationalError as BrokerError

from auditlog.listing import ListingError, ListingRefused, as_query_dict, events_for_listing
from auditlog.models import EventAction
from auditlog.sanitize import model_to_dict
from auditlog.search import SearchError
from auditlog.services import record_event
from directory.listing import users_for_listing
from directory.models import User
from exports.files import forget_file
from exports.models import DataExport, ExportFormat, ExportStatus
from exports.writers import LAYOUTS, write_csv, write_jsonl
from notifications.models import Notification, NotificationSeverity
from project.replicas import read_alias

logger = logging.getLogger(__name__)

# The listing (rows, search, filters, ordering) that an export of each model reads, the same
# one the model's list endpoint reads.
LISTINGS: dict[str, Callable[..., models.QuerySet[Any]]] = {
    "auditlog.event": events_for_listing,
    "directory.user": users_for_listing,
}
# Query parameters that are the export's own, not the list's.
OWN_PARAMETERS = ("format",)
MAX_ATTEMPTS = 3
CHUNK_SIZE = 2_000
WRITERS = {ExportFormat.CSV: write_csv, ExportFormat.JSONL: write_jsonl}
# Publishing to a broker that is down gives up after about a second.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
QUEUE_UNAVAILABLE = (
    "The background task queue is unavailable, so the export could not be started. Try again later."
)


class ExportRefused(Exception):
    """The export cannot be built, for a reason the requester can act on (never retried)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExportQueueUnavailable(Exception):
    """The broker did not take the build task; the export has been marked failed."""


# --- Requesting -----------------------------------------------------------------------------


def stored_query_params(query: QueryDict) -> dict[str, str | list[str]]:
    """The list's query parameters as stored: one value per key, the last one (as authentik
    stores them), except that a repeated key keeps all its values as a list, so that
    multi-value filters such as ``actions`` are honoured. The export's own ``format`` is left
    out (it is a field of the export)."""
    params: dict[str, str | list[str]] = {}
    for key, values in query.lists():
        if key in OWN_PARAMETERS or not values:
            continue
        params[key] = values if len(values) > 1 else values[-1]
    return params


def request_export(
    *,
    user: User,
    model: type[models.Model],
    query_params: Mapping[str, str | list[str]],
    export_format: str = ExportFormat.CSV,
) -> DataExport:
    """Record an export of ``model``'s list and enqueue its build once the transaction commits.

    Raises :class:`ExportQueueUnavailable` when the broker does not take the task; the export
    is then already marked failed, so nothing stays queued forever.
    """
    with transaction.atomic():
        export = DataExport.objects.create(
            requested_by=user,
            content_type=ContentType.objects.get_for_model(model),
            query_params=dict(query_params),
            format=export_format,
        )
        transaction.on_commit(partial(enqueue_export, export.pk), robust=False)
    export.refresh_from_db()
    return export


def enqueue_export(export_id: UUID) -> None:
    """Send the build task; when the broker is unreachable, fail the export and say so."""
    from exports.tasks import generate_export

    if generate_export.app.conf.task_always_eager:
        generate_export.delay(str(export_id))
        return
    try:
        generate_export.apply_async((str(export_id),), retry=True, retry_policy=PUBLISH_RETRY)
    except (BrokerError, OSError) as exc:
        logger.warning("Could not enqueue export %s: %s", export_id, exc)
        DataExport.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.FAILED, error=QUEUE_UNAVAILABLE, finished_on=timezone.now()
        )
        raise ExportQueueUnavailable(QUEUE_UNAVAILABLE) from exc


def delete_export(*, export: DataExport) -> None:
    """Delete the export; its stored file goes once the deletion commits."""
    export.delete()  # the post_delete receiver removes the file


# --- Building -------------------------------------------------------------------------------


def build_export(export_id: UUID | str) -> DataExport | None:
    """Build the export's file once and tell the requester.

    Safe to run twice: only the run that claims the export builds it; a completed or failed
    export is left alone. A run that dies half-way leaves the export ``running``; the next
    delivery of the task claims it again, until ``MAX_ATTEMPTS`` runs have started. A file is
    only stored once it is complete, and is deleted when the export fails.
    """
    attempt = _claim(export_id)
    if attempt is None:
        return None
    export = DataExport.objects.select_related("requested_by", "content_type").get(pk=export_id)
    name = ""
    try:
        with _heartbeat(export.pk, attempt):
            name, rows = _write_file(export)
        _complete(export, attempt, name, rows)
    except ExportRefused as exc:
        _fail(export, attempt, exc.reason, name)
    except Exception as exc:
        if attempt >= MAX_ATTEMPTS:
            logger.exception("Export %s failed for the last time", export.pk)
            _fail(export, attempt, _internal_error(attempt, exc), name)
        else:
            _release(export, attempt)
            raise  # the task retries it
    return DataExport.objects.filter(pk=export.pk).first()


def _claim(export_id: UUID | str) -> int | None:
    """This run's attempt number, or ``None`` when there is nothing (left) to do."""
    row = DataExport.objects.filter(pk=export_id).values("status", "attempts").first()
    if row is None or row["status"] in (ExportStatus.COMPLETED, ExportStatus.FAILED):
        return None
    if row["attempts"] >= MAX_ATTEMPTS:
        export = DataExport.objects.select_related("requested_by", "content_type").get(pk=export_id)
        _fail(export, row["attempts"], _interrupted(row["attempts"]), "")
        return None
    attempt = row["attempts"] + 1
    # Conditional on the attempt count read above: of two deliveries racing here, one wins.
    claimed = DataExport.objects.filter(
        pk=export_id,
        status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING),
        attempts=row["attempts"],
    ).update(
        status=ExportStatus.RUNNING,
        attempts=attempt,
        started_on=timezone.now(),
        heartbeat=timezone.now(),
        finished_on=None,
        error="",
    )
    return attempt if claimed else None


def _interrupted(attempts: int) -> str:
    return (
        f"The export was interrupted {attempts} times (the worker stopped while building it) "
        "and was given up."
    )


@contextmanager
def _heartbeat(export_id: UUID | str, attempt: int) -> Iterator[None]:
    """While the block runs, refresh the export's ``heartbeat`` every few seconds, from a
    thread with a database connection of its own (the build's may sit in a read-only
    transaction). A worker that dies stops the beat; :func:`reap_stalled_exports` notices."""
    stop = threading.Event()
    interval = max(1.0, settings.EXPORT_STALL_TIMEOUT.total_seconds() / 5)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    DataExport.objects.filter(
                        pk=export_id, status=ExportStatus.RUNNING, attempts=attempt
                    ).update(heartbeat=timezone.now())
                except DatabaseError:
                    logger.warning("Could not refresh the heartbeat of export %s", export_id)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"export-heartbeat-{export_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def reap_stalled_exports() -> int:
    """Queue again the exports whose build stopped showing signs of life (its worker died;
    Redis would only deliver the task again after its visibility timeout, an hour), or fail
    those that have used up their attempts. Safe to run twice; returns how many it handled."""
    cutoff = timezone.now() - settings.EXPORT_STALL_TIMEOUT
    stalled = DataExport.objects.filter(status=ExportStatus.RUNNING).filter(
        Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, started_on__lt=cutoff)
    )
    handled = 0
    for export in stalled.select_related("requested_by", "content_type"):
        if export.attempts >= MAX_ATTEMPTS:
            logger.warning("Export %s stalled on its last attempt: failing it", export.pk)
            _fail(export, export.attempts, _interrupted(export.attempts), "")
            handled += 1
            continue
        # Conditional on the beat read above: a build that just showed life keeps running.
        requeued = DataExport.objects.filter(
            pk=export.pk,
            status=ExportStatus.RUNNING,
            attempts=export.attempts,
            heartbeat=export.heartbeat,
        ).update(status=ExportStatus.QUEUED)
        if requeued:
            logger.warning("Export %s stalled (its worker stopped): queued again", export.pk)
            with suppress(ExportQueueUnavailable):  # enqueue_export failed it, saying why
                enqueue_export(export.pk)
            handled += 1
    return handled


def _write_file(export: DataExport) -> tuple[str, int]:
    """Write the rows to a temporary file, then store it; return its name and row count."""
    # The rows come from a replica when one is healthy (the requester's permissions and the
    # export's own row from the primary).
    alias = read_alias()
    queryset = _rows(export, _requester(export)).using(alias)
    layout = LAYOUTS[_label(export)](as_query_dict(export.query_params), connection.vendor)
    handle, path = tempfile.mkstemp(prefix="export-", suffix=f".{export.format}")
    try:
        with open(handle, "w", encoding="utf-8", newline="") as stream, _consistent_read(alias):
            rows = WRITERS[ExportFormat(export.format)](layout, queryset, stream, CHUNK_SIZE)
        with open(path, "rb") as content:
            return _store(export, FinishedFile(content, path)), rows
    finally:
        with suppress(FileNotFoundError):  # moved into storage
            os.unlink(path)


class FinishedFile(File):
    """A complete temporary file: a file-system storage moves it rather than copying it."""

    def __init__(self, file: IO[bytes], path: str) -> None:
        super().__init__(file)
        self.path = path

    def temporary_file_path(self) -> str:
        return self.path


@contextmanager
def _consistent_read(alias: str) -> Iterator[None]:
    """On PostgreSQL, one read-only transaction: a consistent snapshot, and a server-side
    cursor that streams (outside a transaction Django's cursors are WITH HOLD, which the
    server materialises first). Elsewhere no transaction: SQLite would lock out writers."""
    if connections[alias].vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
        yield


def _store(export: DataExport, content: File) -> str:
    storage = export.file.storage
    plural = _plural(export).lower()
    name = f"exports/{plural}_{export.pk}.{export.format}"
    # Left by an earlier run that died between storing the file and finishing.
    forget_file(storage, name)
    return storage.save(name, content)


def _complete(export: DataExport, attempt: int, name: str, rows: int) -> None:
    requester = export.requested_by
    with transaction.atomic():
        done = DataExport.objects.filter(
            pk=export.pk, status=ExportStatus.RUNNING, attempts=attempt
        ).update(
            status=ExportStatus.COMPLETED,
            completed=True,
            file=name,
            row_count=rows,
            finished_on=timezone.now(),
            error="",
        )
        if done and requester is not None:
            export.refresh_from_db()
            message = f"{capfirst(export.model_verbose_name)} export generated successfully"
            event = record_event(
                action=EventAction.EXPORT_READY,
                app="exports",
                user=requester,
                context={"message": message, "export": model_to_dict(export)},
            )
            Notification.objects.create(
                user=requester,
                severity=NotificationSeverity.NOTICE,
                body=message,
                hyperlink=export.download_url,
                hyperlink_label="Download",
                event=event,
            )
    if not done:
        # Deleted meanwhile, or taken over by a later run: this file is nobody's.
        _discard(export, name)


def _fail(export: DataExport, attempt: int, reason: str, name: str) -> None:
    with transaction.atomic():
        failed = DataExport.objects.filter(
            pk=export.pk,
            status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING),
            attempts=attempt,
        ).update(
            status=ExportStatus.FAILED,
            completed=False,
            file="",
            error=reason,
            finished_on=timezone.now(),
        )
        if failed and export.requested_by is not None:
            Notification.objects.create(
                user=export.requested_by,
                severity=NotificationSeverity.ALERT,
                body=f"{capfirst(export.model_verbose_name)} export failed: {reason}",
            )
    _discard(export, name)


def _release(export: DataExport, attempt: int) -> None:
    """Hand the export back to the queue for the task's retry."""
    DataExport.objects.filter(pk=export.pk, status=ExportStatus.RUNNING, attempts=attempt).update(
        status=ExportStatus.QUEUED
    )


def _discard(export: DataExport, name: str) -> None:
    if name and not DataExport.objects.filter(pk=export.pk, file=name).exists():
        forget_file(export.file.storage, name)


def _internal_error(attempt: int, exc: Exception) -> str:
    # The exception's text stays in the log: it may hold anything (SQL, paths, values).
    return (
        f"The export failed {attempt} times (last error: {type(exc).__name__}; "
        "the details are in the worker's log)."
    )


# --- The list, as the requester sees it -----------------------------------------------------


def _requester(export: DataExport) -> User:
    user = export.requested_by
    if user is None:
        raise ExportRefused("The user who requested the export no longer exists.")
    if not user.is_active:
        raise ExportRefused(f"{user.username} is deactivated.")
    return user


def _rows(export: DataExport, user: User) -> models.QuerySet[Any]:
    """The rows of the export: the model's list for ``user`` and the stored parameters."""
    select = LISTINGS[_label(export)]
    try:
        return select(user=user, params=export.query_params)
    except ListingRefused:
        raise ExportRefused(
            f"{user.username} may no longer view {_plural(export).lower()}."
        ) from None
    except (ListingError, SearchError, DjangoQLError) as exc:
        raise ExportRefused(f"The export's filters are no longer valid: {exc}") from None


def _label(export: DataExport) -> str:
    label = f"{export.content_type.app_label}.{export.content_type.model}"
    if label not in LISTINGS:
        raise ExportRefused(f"{label} cannot be exported.")
    return label


def _plural(export: DataExport) -> str:
    model = export.content_type.model_class()
    return str(model._meta.verbose_name_plural) if model else export.content_type.model
