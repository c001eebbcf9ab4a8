"""The Data Exports page, and downloading an export's file: only through the download view,
with the API's permission checks (the files are never served as public media)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from auditlog.models import Event
from auditlog.web import page_permission, paginate
from exports.api.views import DataExportViewSet
from exports.files import file_response
from exports.models import ADD_PERMISSION, VIEW_PERMISSION, DataExport, ExportFormat
from exports.services import ExportQueueUnavailable, request_export
from searches.models import SavedSearch
from searches.services import problem_of_saved

# Query parameters that say nothing about which rows an export holds.
NOT_SHOWN = {"page", "page_size"}

# The API's download action, for a request that brings an API token rather than a session.
api_download = DataExportViewSet.as_view({"get": "download"})


def brings_api_token(request: HttpRequest) -> bool:
    """Whether the request authenticates like an API client (``Authorization: Bearer ...``).
    Other schemes (a proxy's Basic credentials a browser repeats) leave the session in charge."""
    scheme, _, _ = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer"


@require_GET
def download(request: HttpRequest, pk: str) -> HttpResponseBase:
    """An export's ``file_url``: it downloads with the credentials that read the export.

    With a Bearer token the API's download action answers (its authentication and permission
    checks, 403 without the right to use exports, 404 for an export not visible to the user or
    not ready), so an API client never meets the login page. Otherwise this is a page: signed
    out, the browser is sent to sign in; signed in, 404 unless the export is visible to the
    user, completed and not failed. An export that is gone (or not the user's) gets a 404 page
    that says it was deleted and leads to Data Exports, since the link usually comes from an
    older notification.
    """
    if brings_api_token(request):
        return api_download(request, pk=pk)
    return _browser_download(request, pk)


@page_permission()
def _browser_download(request: HttpRequest, pk: str) -> HttpResponseBase:
    visible = DataExport.objects.visible_to(request.user)
    if not visible.filter(pk=pk).exists():
        # Deleted (by someone, or by retention) since its notification linked here; an export
        # of someone else's reads the same, so the page says nothing about whether it exists.
        return render(request, "exports/export_gone.html", status=404)
    export = get_object_or_404(visible.downloadable(), pk=pk)
    return file_response(export, via="page")


@page_permission(ADD_PERMISSION, VIEW_PERMISSION, any_of=True)
def export_list(request: HttpRequest) -> HttpResponse:
    """Events > Data Exports: the exports the user may see (the API's visibility rules)."""
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
    saved_searches = [
        (saved, problem_of_saved(saved))
        for saved in SavedSearch.objects.visible_to(request.user).select_related("owner")
    ]
    return render(
        request,
        "exports/dataexport_list.html",
        {
            "page": page,
            "rows": rows,
            "saved_searches": saved_searches
            if request.user.has_perm("auditlog.view_event")
            else [],
            "formats": ExportFormat.choices,
        },
    )


@require_POST
@page_permission(ADD_PERMISSION, "auditlog.view_event")
def export_saved_search(request: HttpRequest) -> HttpResponse:
    """Export the events of a saved search (its query, filters and order), unless it no
    longer works: then say why instead of exporting nothing."""
    back = redirect(reverse("exports:export-list"))
    chosen = request.POST.get("saved_search", "")
    saved = (
        SavedSearch.objects.visible_to(request.user).filter(pk=int(chosen)).first()
        if chosen.isdecimal()
        else None
    )
    export_format = request.POST.get("format", ExportFormat.CSV)
    if saved is None:
        messages.error(request, "Pick one of your saved searches or a shared one.")
        return back
    if export_format not in ExportFormat.values:
        messages.error(request, f"Unknown format {export_format!r}: use csv or jsonl.")
        return back
    if problem := problem_of_saved(saved):
        messages.error(request, f"Nothing was exported. {problem}")
        return back
    try:
        request_export(
            user=request.user,  # type: ignore[arg-type]
            model=Event,
            query_params=saved.params(),
            export_format=export_format,
        )
    except ExportQueueUnavailable as exc:
        messages.error(request, str(exc))
        return back
    messages.success(request, f'Exporting the saved search "{saved.name}" in the background.')
    return back
