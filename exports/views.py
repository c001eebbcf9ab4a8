"""Downloading an export's file: only through these views, with the API's permission checks
(the files are never served as public media)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from auditlog.web import forbidden, paginate
from exports.api.views import ADD_PERMISSION, VIEW_PERMISSION
from exports.models import DataExport, ExportFormat

# Query parameters that say nothing about which rows an export holds.
NOT_SHOWN = {"page", "page_size"}

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/jsonl; charset=utf-8",
}


def file_response(export: DataExport) -> FileResponse:
    """The export's file as an attachment, streamed from storage."""
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


@require_GET
@login_required
def download(request: HttpRequest, pk: str) -> FileResponse:
    """404 unless the export is visible to the user, completed and not failed."""
    export = get_object_or_404(DataExport.objects.visible_to(request.user).downloadable(), pk=pk)
    return file_response(export)


@login_required
def export_list(request: HttpRequest) -> HttpResponse:
    """Events > Data Exports: the exports the user may see (the API's visibility rules)."""
    if not (request.user.has_perm(ADD_PERMISSION) or request.user.has_perm(VIEW_PERMISSION)):
        return forbidden(request, (ADD_PERMISSION,))
    exports = (
        DataExport.objects.visible_to(request.user)
        .select_related("requested_by", "content_type")
        .order_by("-requested_on", "-id")
    )
    page = paginate(request, exports, page_size=25)
    rows = [
        {
            "export": export,
            "params": [
                (key, ", ".join(value) if isinstance(value, list) else value)
                for key, value in sorted(export.query_params.items())
                if key not in NOT_SHOWN and value not in ("", [], None)
            ],
        }
        for export in page.object_list
    ]
    return render(request, "exports/dataexport_list.html", {"page": page, "rows": rows})
