"""The web admin's event pages: overview, the log, one event, the map data, the drawer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.generic import TemplateView

from auditlog import rollups
from auditlog.api.serializers import EventSerializer
from auditlog.chain.links import sealing_backlog
from auditlog.charts import volume_series
from auditlog.listing import EVENT_LISTING, ListingError
from auditlog.models import Event, EventAction, SystemSettings
from auditlog.presentation import diff_rows, geo_line, pretty, user_line
from auditlog.reads import Read, record_read, search_terms
from auditlog.search import EventSearchSchema, SearchError, apply_search
from auditlog.suggestions import event_introspection
from auditlog.web import (
    Listing,
    PagePermissionMixin,
    ordered,
    page_permission,
    page_size_from,
    paginate,
    query_of,
    refusal,
)
from project.durations import format_duration
from project.replicas import reads_from_replica

VIEW_EVENT = "auditlog.view_event"
EVENT_ORDERING = {"action", "user", "created", "client_ip", "app"}
EVENT_ORDERING_ALIASES = {
    "brand_name": "brand__name",
    "username": "user__username",
    "pk": "event_uuid",
}
# Query parameters that describe "which events": the list, the chart, the map and the export
# all read the same ones.
EVENT_PARAMS = (
    "search",
    "action",
    "actions",
    "username",
    "client_ip",
    "context_model_pk",
    "context_model_name",
    "context_model_app",
    "context_authorized_app",
    "brand_name",
)


def filtered_events(request: HttpRequest) -> tuple[QuerySet[Event], SearchError | None, str | None]:
    """The events the request's filters and search select (the API's own filter set and
    search backend, so a query means the same thing here)."""
    try:
        queryset = EVENT_LISTING.filter(Event.objects.all(), request.GET)
    except ListingError as exc:  # a bad value, or one a filter refuses (client_ip)
        key, messages = next(iter(exc.errors.items()))
        return Event.objects.none(), None, f"{key}: {' '.join(messages)}"
    try:
        return apply_search(queryset, request.GET.get("search", ""), EventSearchSchema), None, None
    except SearchError as exc:
        return Event.objects.none(), exc, None


def event_rows(events: list[Event]) -> list[dict[str, Any]]:
    return [
        {"event": event, "user": user_line(event.user), "geo": geo_line(event.context)}
        for event in events
    ]


@method_decorator(reads_from_replica, name="get")
class OverviewView(PagePermissionMixin, TemplateView):
    template_name = "auditlog/overview.html"
    permission_required = (VIEW_EVENT,)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        recent_window = Event.objects.filter(created__gte=now - timedelta(days=7))
        totals = recent_window.stats({"day": timedelta(days=1), "week": timedelta(days=7)}, now=now)
        failed = recent_window.filter(action=EventAction.LOGIN_FAILED).stats(
            {"day": timedelta(days=1)}, now=now
        )
        recent = list(Event.objects.latest_first()[:10])
        record_read(kind=Read.SEARCH, via="page", what={"view": "overview"})
        return {
            **super().get_context_data(**kwargs),
            "totals": totals["count_step"],
            "unique_users": totals["unique_users"],
            "failed_logins": failed["count_step"]["day"],
            "recent": event_rows(recent),
            "day_ago": now - timedelta(days=1),
            "week_search": f'created >= "{(now - timedelta(days=7)):%Y-%m-%d %H:%M}"',
        }


@method_decorator(reads_from_replica, name="get")
class EventListView(PagePermissionMixin, TemplateView):
    template_name = "auditlog/event_list.html"
    permission_required = (VIEW_EVENT,)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        request = self.request
        queryset, search_error, filter_error = filtered_events(request)
        queryset, ordering_error = ordered(
            request,
            queryset,
            allowed=EVENT_ORDERING,
            aliases=EVENT_ORDERING_ALIASES,
            default=["-created"],
        )
        page = paginate(request, queryset, page_size=page_size_from(request))
        search = request.GET.get("search", "")
        if not (search_error or filter_error or ordering_error):
            record_read(kind=Read.SEARCH, via="page", what=search_terms(request.GET))
        return {
            **super().get_context_data(**kwargs),
            "listing": Listing(
                page, request.GET.get("ordering", "-created"), page.paginator.per_page
            ),
            "rows": event_rows(list(page.object_list)),
            "search": search,
            "search_error": search_error,
            "error_pointer": _pointer(search, search_error),
            "filter_error": filter_error or ordering_error,
            "filters": {
                key: request.GET.getlist(key)
                for key in EVENT_PARAMS
                if key != "search" and request.GET.get(key)
            },
            "introspection": event_introspection(),
            "event_query": _event_query(request),
            "export_query": _event_query(request, keep=("ordering",)),
        }


def _pointer(search: str, error: SearchError | None) -> dict[str, Any] | None:
    """The query's line with a caret under the column the error points at."""
    if error is None or not error.column:
        return None
    lines = search.splitlines() or [""]
    line = lines[min((error.line or 1), len(lines)) - 1]
    return {"line": line, "caret": " " * (error.column - 1) + "^"}


def _event_query(request: HttpRequest, keep: tuple[str, ...] = ()) -> str:
    """The "which events" part of the query string (for the chart and map), plus ``keep``
    (the export also keeps the order)."""
    return query_of(request, (*EVENT_PARAMS, *keep))


@method_decorator(reads_from_replica, name="get")
class EventDetailView(PagePermissionMixin, TemplateView):
    template_name = "auditlog/event_detail.html"
    permission_required = (VIEW_EVENT,)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        event = get_object_or_404(Event, pk=self.kwargs["pk"])
        record_read(kind=Read.EVENT, via="page", what={"event_pk": str(event.pk)})
        return {**super().get_context_data(**kwargs), **event_context(event)}


def event_context(event: Event) -> dict[str, Any]:
    """Everything the event-info templates show about one event."""
    return {
        "event": event,
        "user": user_line(event.user),
        "geo": geo_line(event.context),
        "request_id": _request_id(event.context),
        "diff": diff_rows(event.context),
        "model": event.context.get("model")
        if isinstance(event.context.get("model"), dict)
        else None,
        "context_json": pretty(event.context),
        "user_json": pretty(event.user),
        "raw_json": pretty(EventSerializer(event).data),
    }


def _request_id(context: Any) -> str | None:
    """The id of the request that wrote the event: its process log lines carry it too."""
    http_request = context.get("http_request") if isinstance(context, dict) else None
    value = http_request.get("request_id") if isinstance(http_request, dict) else None
    return value if isinstance(value, str) and value else None


@page_permission(VIEW_EVENT)
@reads_from_replica
def event_info(request: HttpRequest, pk: str) -> HttpResponse:
    """The expandable part of a row, fetched when the row is opened."""
    event = get_object_or_404(Event, pk=pk)
    record_read(kind=Read.EVENT, via="page", what={"event_pk": str(event.pk)})
    return render(request, "auditlog/_event_info.html", event_context(event))


MAP_MAX_DAYS = 90


@page_permission(VIEW_EVENT, as_json=True)
@reads_from_replica
def event_chart(request: HttpRequest) -> HttpResponse:
    """Events per action over the whole period the current search covers."""
    queryset, search_error, filter_error = filtered_events(request)
    if search_error or filter_error:
        return JsonResponse({"detail": str(search_error or filter_error)}, status=400)
    return JsonResponse(volume_series(queryset))


@page_permission(VIEW_EVENT, as_json=True)
@reads_from_replica
def event_map(request: HttpRequest) -> HttpResponse:
    """Located places and their event counts for everything the current search matches."""
    queryset, search_error, filter_error = filtered_events(request)
    if search_error or filter_error:
        return JsonResponse({"detail": str(search_error or filter_error)}, status=400)
    days = request.GET.get("history_days", "")
    counted = rollups.counted(request.GET) if rollups.answerable(request.GET) else None
    if days:
        # The last N days, counted by the hour (as the volume chart counts them).
        if not days.isascii() or not days.isdigit() or not 1 <= int(days) <= MAP_MAX_DAYS:
            return JsonResponse(
                {"detail": f"history_days must be a whole number from 1 to {MAP_MAX_DAYS}."},
                status=400,
            )
        since = timezone.now() - timedelta(days=int(days))
        queryset = queryset.filter(created__gte=since)
        if counted is not None:
            counted = counted.filter(hour__gte=since.replace(minute=0, second=0, microsecond=0))
    if counted is not None:
        points = rollups.places(rollups=counted, events=queryset)
    else:
        points = queryset.geo_points()  # type: ignore[attr-defined]
    record_read(kind=Read.SEARCH, via="page", what={"view": "map", **search_terms(request.GET)})
    return JsonResponse({"points": points})


class RetentionForm(forms.ModelForm):
    class Meta:
        model = SystemSettings
        fields = ["event_retention", "gdpr_compliance"]
        labels = {"event_retention": "Event retention"}


@page_permission("auditlog.view_systemsettings")
def system_settings(request: HttpRequest) -> HttpResponse:
    instance = SystemSettings.load()
    form = RetentionForm(request.POST or None, instance=instance)
    if request.method == "POST":
        if answer := refusal(request, "auditlog.change_systemsettings"):
            return answer
        if form.is_valid():
            form.save()
            messages.success(request, "Settings saved. New events use the new retention.")
            return redirect(reverse("auditlog:settings"))
    in_force = SystemSettings.load()  # the stored row, not the form's unsaved instance
    backlog = sealing_backlog()
    return render(
        request,
        "auditlog/settings.html",
        {
            "form": form,
            "environment_retention": format_duration(django_settings.EVENT_RETENTION),
            "effective_retention": format_duration(in_force.retention),
            "gdpr_compliance": in_force.gdpr_compliance,
            "backlog": backlog,
            "backlog_age": backlog.age_seconds(timezone.now()),
        },
        status=400 if form.errors else 200,
    )


@page_permission()
def search_help(request: HttpRequest) -> HttpResponse:
    return render(request, "auditlog/search_help.html")
