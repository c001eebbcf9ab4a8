"""An export's stored file: served as an HTTP answer (by the web and the API download views
alike) and deleted with its export."""

from __future__ import annotations

import logging

from django.core.files.storage import Storage
from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control

from auditlog.reads import Read, record_read
from exports.models import DataExport, ExportFormat

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/jsonl; charset=utf-8",
}


def file_response(export: DataExport, *, via: str) -> FileResponse:
    """The export's file as an attachment, streamed from storage, never cached; the download
    is recorded as a read (``via``: ``api`` or ``page``)."""
    try:
        handle = export.file.open("rb")
    except FileNotFoundError:
        raise Http404("The export's file is missing.") from None
    record_read(
        kind=Read.EXPORT_DOWNLOAD,
        via=via,
        what={"export": {"pk": str(export.pk), "model": export_model(export)}},
        details={"rows": export.row_count, "format": export.format},
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=export.filename,
        content_type=CONTENT_TYPES[ExportFormat(export.format)],
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


def forget_file(storage: Storage, name: str) -> None:
    """Delete a stored file if it exists (never fails the caller)."""
    if not name:
        return
    try:
        storage.delete(name)
    except Exception:  # a file we cannot delete must not undo the work around it
        logger.exception("Could not delete the export file %s", name)


def export_model(export: DataExport) -> str:
    """ "app_label.model" of what the export holds (as a read event names it)."""
    return f"{export.content_type.app_label}.{export.content_type.model}"
