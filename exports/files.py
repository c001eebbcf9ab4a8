"""An export's stored file: served as an HTTP answer (by the web and the API download views
alike) and deleted with its export."""

from __future__ import annotations

import logging

from django.core.files.storage import Storage
from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control

from exports.models import DataExport, ExportFormat

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/jsonl; charset=utf-8",
}


def file_response(export: DataExport) -> FileResponse:
    """The export's file as an attachment, streamed from storage, never cached."""
    try:
        handle = export.file.open("rb")
    except FileNotFoundError:
        raise Http404("The export's file is missing.") from None
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
