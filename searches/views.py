"""The saved-search pages: save the event log's current search, list / rename / share / pin /
delete, and open one by its link (the event log, restored)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from auditlog.views import EventListView
from auditlog.web import forbidden, page_permission
from searches.models import PUBLISH_PERMISSION, SavedSearch
from searches.services import (
    FILTER_KEYS,
    SavedSearchError,
    may_change,
    problem_of_saved,
    save_search,
    set_pinned,
)

VIEW_EVENT = "auditlog.view_event"
# What a visitor may change on an opened saved search without leaving it.
PAGE_PARAMS = ("page", "page_size", "ordering")


@page_permission(VIEW_EVENT)
def saved_search_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    searches = SavedSearch.objects.visible_to(user).select_related("owner")
    pinned = set(SavedSearch.objects.pinned_by(user).values_list("pk", flat=True))
    rows = [
        {
            "search": saved,
            "problem": problem_of_saved(saved),
            "pinned": saved.pk in pinned,
            "may_change": may_change(saved, user),
        }
        for saved in searches
    ]
    return render(
        request,
        "searches/savedsearch_list.html",
        {"rows": rows, "may_publish": user.has_perm(PUBLISH_PERMISSION)},
    )


@require_POST
@page_permission(VIEW_EVENT)
def saved_search_create(request: HttpRequest) -> HttpResponse:
    """Save the event log's current search (its form posts the search, filters and order)."""
    data = request.POST
    filters = {
        key: values if len(values) > 1 else values[0]
        for key in FILTER_KEYS
        if (values := [value for value in data.getlist(key) if value])
    }
    try:
        saved = save_search(
            user=request.user,
            name=data.get("name", ""),
            query=data.get("search", ""),
            filters=filters,
            ordering=data.get("ordering", ""),
            shared=data.get("shared") == "on",
        )
    except SavedSearchError as exc:
        messages.error(request, f"The search was not saved. {exc}")
        back = QueryDict(mutable=True)
        back.update({"search": data.get("search", "")})
        for key, value in filters.items():
            back.setlist(key, value if isinstance(value, list) else [value])
        return redirect(f"{reverse('auditlog:event-list')}?{back.urlencode()}")
    messages.success(request, f'Search "{saved.name}" saved.')
    return redirect(reverse("searches:saved-search-open", args=[saved.pk]))


def _changeable(request: HttpRequest, pk: int) -> SavedSearch | HttpResponse:
    saved = get_object_or_404(SavedSearch.objects.visible_to(request.user), pk=pk)
    if not may_change(saved, request.user):
        return forbidden(request, ("owner",))
    return saved


@require_POST
@page_permission(VIEW_EVENT)
def saved_search_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename, or share / unshare."""
    saved = _changeable(request, pk)
    if isinstance(saved, HttpResponse):
        return saved
    try:
        save_search(
            user=request.user,
            instance=saved,
            name=request.POST.get("name", saved.name),
            query=saved.query,
            filters=saved.filters,
            ordering=saved.ordering,
            shared=request.POST.get("shared") == "on"
            if "shared_given" in request.POST
            else saved.shared,
        )
    except SavedSearchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f'Search "{saved.name}" saved.')
    return redirect(reverse("searches:saved-search-list"))


@require_POST
@page_permission(VIEW_EVENT)
def saved_search_delete(request: HttpRequest, pk: int) -> HttpResponse:
    saved = _changeable(request, pk)
    if isinstance(saved, HttpResponse):
        return saved
    saved.delete()
    messages.success(request, f'Search "{saved.name}" deleted.')
    return redirect(reverse("searches:saved-search-list"))


@require_POST
@page_permission(VIEW_EVENT)
def saved_search_pin(request: HttpRequest, pk: int) -> HttpResponse:
    saved = get_object_or_404(SavedSearch.objects.visible_to(request.user), pk=pk)
    set_pinned(saved, request.user, request.POST.get("pinned") == "true")
    target = request.POST.get("next", "")
    if not target.startswith("/") or target.startswith("//"):  # only a page of this site
        target = reverse("searches:saved-search-list")
    return redirect(target)


class SavedSearchOpenView(EventListView):
    """``/searches/<pk>/``: the event log with the saved search restored (a shareable link);
    a search that no longer runs says why."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        saved = get_object_or_404(
            SavedSearch.objects.visible_to(self.request.user), pk=self.kwargs["pk"]
        )
        restored = QueryDict(mutable=True)
        for key, value in saved.params().items():
            restored.setlist(key, value if isinstance(value, list) else [value])
        for key in PAGE_PARAMS:
            if key in self.request.GET:
                restored[key] = self.request.GET[key]
        self.request.GET = restored  # type: ignore[assignment]
        context = super().get_context_data(**kwargs)
        return {
            **context,
            "saved_search": saved,
            "saved_problem": problem_of_saved(saved),
            "saved_pinned": saved.pinned_by.filter(pk=self.request.user.pk).exists(),
        }
