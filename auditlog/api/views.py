"""``/api/v3/events/events/``: the event log (append-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.text import slugify
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog import compat, rollups
from auditlog.api.cursor import EventPagination, cursor_response, wants_cursor
from auditlog.api.filters import (
    ListingFilterMixin,
    QLSearchFilter,
    StableOrderingFilter,
)
from auditlog.api.pagination import single_value, whole_number
from auditlog.api.serializers import (
    ActionSerializer,
    BulkResultSerializer,
    EventSerializer,
    StatsSerializer,
    TopPerUserSerializer,
    VolumeSerializer,
)
from auditlog.ingest import MAX_BATCH, BatchError, ingest_events
from auditlog.listing import EVENT_LISTING, ListingRefused, events_for_listing
from auditlog.live import stream as live_stream
from auditlog.models import Event, EventAction
from auditlog.reads import Read, record_read, search_terms
from auditlog.representation import event_rows, iso_datetime, rows_json
from auditlog.suggestions import event_introspection, suggest_values
from project.durations import DurationFormatError, parse_duration
from project.renderers import FastJSONRenderer
from project.replicas import ReplicaReadsMixin

MAX_HISTORY = timedelta(days=90)
STATS_WINDOW = timedelta(days=60)


def _int_param(request: Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = whole_number(request, name)
    if value is None:
        return default
    if value < minimum:
        raise ValidationError({name: [f"Must be at least {minimum}."]})
    return min(value, maximum)


@extend_schema_view(
    list=extend_schema(
        summary="List events, newest first (or after a position, in commit order)",
        description="Filter, search and order the event log. With `after`, a gap-free pull "
        "cursor: the events sealed after that position, oldest first in commit order, each with "
        "its `position`, and `next_position` and `has_more` in the answer (see the README).",
    ),
    retrieve=extend_schema(summary="One event"),
    create=extend_schema(
        summary="Ingest an event",
        description="Record an event from another system. The server sets pk, created and expires, "
        "and masks secrets in the JSON fields. Needs auditlog.add_event.",
    ),
)
class EventViewSet(
    ReplicaReadsMixin, ListingFilterMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """The event log. Events are append-only: they cannot be updated or deleted here."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    # Search, filters and ordering are the listing's, which the exports read too.
    listing = EVENT_LISTING
    filter_backends = [QLSearchFilter, DjangoFilterBackend, StableOrderingFilter]
    pagination_class = EventPagination

    action_permissions = {"bulk": ["auditlog.add_event"]}

    def get_autocomplete(self) -> dict[str, Any]:
        return event_introspection()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The list, and its read on the record (a list without search or filters too: it
        is still a read of the trail; paging through one search, or pulling with the cursor,
        is one read a window)."""
        if wants_cursor(request):
            response = cursor_response(self, request)
            what = {**search_terms(request.query_params), "cursor": True}
        else:
            response = self._page(request)
            what = search_terms(request.query_params)
        record_read(kind=Read.SEARCH, via="api", what=what)
        return response

    def _page(self, request: Request) -> Response:
        """DRF's list, the rows of the page as tuples written straight to JSON (no model
        instance nor serializer per row: ``auditlog.representation.rows_json``, the same JSON
        as the serializer's, which a test compares)."""
        queryset = event_rows(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        if page is None:  # no pagination: DRF's answer, a plain list
            return Response(rows_json(queryset))
        return self.get_paginated_response(rows_json(page))

    def _record_aggregate(self, request: Request, view: str) -> None:
        """Counts over the trail are reads of it too (the search they count is recorded)."""
        what = {"view": view, **search_terms(request.query_params)}
        record_read(kind=Read.SEARCH, via="api", what=what)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        record_read(kind=Read.EVENT, via="api", what={"event_pk": str(response.data["pk"])})
        return response

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        if self.action == "stream":
            # The stream answers text/event-stream, which no renderer writes; a refusal before
            # it starts (400, 403) is JSON whatever the client accepts.
            return FastJSONRenderer(), "application/json"
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Follow the events list as it grows (Server-Sent Events)",
        description=(
            "A text/event-stream of the events that match the list's filters and search, in "
            "commit order, as they are committed (within about a second). Each event is "
            "`id: <position>` then `data: <the event as the list gives it>`. To resume, send the "
            "last id received as the `Last-Event-ID` header (browsers' EventSource does) or as "
            "`after`: the stream sends exactly the events after it, none twice. Without either "
            "it starts with new events. A comment line (`: keep-alive`, with the position "
            "scanned so far as `id:`) comes every 15 seconds. Errors come before the stream "
            "starts: a malformed search or filter or a `Last-Event-ID` that is not a position "
            "is a 400, reading events without auditlog.view_event a 403."
        ),
        parameters=[
            OpenApiParameter(
                "after",
                OpenApiTypes.INT,
                description="Resume after this position (an earlier event's id).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.INT,
                location=OpenApiParameter.HEADER,
                description="Resume after this position; takes precedence over after.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            400: OpenApiTypes.OBJECT,
            403: OpenApiTypes.OBJECT,
        },
        filters=True,
    )
    @action(detail=False, pagination_class=None)
    def stream(self, request: Request) -> Any:
        try:
            events = events_for_listing(user=request.user, params=request.query_params)
        except ListingRefused as exc:
            raise PermissionDenied(str(exc)) from None
        try:
            live_stream.requested_position(request._request)
        except live_stream.PositionError as exc:
            name = "Last-Event-ID" if "Last-Event-ID" in str(exc) else "after"
            raise ValidationError({name: [str(exc)]}) from None
        # Following the trail is a read of it; on the record before the stream starts (a
        # reconnection of the same stream is the same read, counted within its window).
        params = request.query_params.copy()
        params.pop("after", None)
        record_read(kind=Read.SEARCH, via="api", what={**search_terms(params), "stream": True})
        return live_stream.respond(request._request, events)

    @extend_schema(
        summary="Ingest a batch of events",
        description=(
            f"Up to {MAX_BATCH} events as a JSON array, each shaped like a single ingested event. "
            "The whole batch is validated first and stored completely or not at all; errors "
            "name the index of the event and the field. Needs auditlog.add_event."
        ),
        request=EventSerializer(many=True),
        responses={201: BulkResultSerializer, 400: OpenApiTypes.OBJECT},
        filters=False,
    )
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def bulk(self, request: Request) -> Response:
        # The batch's rules are the recording service's, shared with imports, which read a
        # number as text; the API holds each event to the JSON types its schema documents, as
        # the single-event endpoint does.
        if isinstance(request.data, list):
            shape = EventSerializer()
            mistyped = {
                str(index): problems
                for index, item in enumerate(request.data)
                if (problems := shape.type_problems(item))
            }
            if mistyped:
                return Response(mistyped, status=status.HTTP_400_BAD_REQUEST)
        try:
            events = ingest_events(request.data)
        except BatchError as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {"created": len(events), "pks": [str(event.event_uuid) for event in events]},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Every event action", responses=ActionSerializer(many=True), filters=False
    )
    @action(detail=False, pagination_class=None, filter_backends=[])
    def actions(self, request: Request) -> Response:
        return Response(
            [
                {
                    "name": str(choice.label),
                    "description": "",
                    "component": choice.value,
                    "model_name": "",
                }
                for choice in EventAction
            ]
        )

    @extend_schema(
        summary="The most used applications",
        parameters=[
            OpenApiParameter(
                "action", OpenApiTypes.STR, description="The action to count (default login)."
            ),
            OpenApiParameter(
                "top_n", OpenApiTypes.INT, description="How many applications (default 15)."
            ),
        ],
        responses=TopPerUserSerializer(many=True),
        filters=False,
    )
    @action(detail=False, pagination_class=None, filter_backends=[])
    def top_per_user(self, request: Request) -> Response:
        chosen = single_value(request, "action") or EventAction.LOGIN
        if "\x00" in chosen:  # PostgreSQL cannot compare text with a NUL in it
            raise ValidationError({"action": ["Null characters are not allowed."]})
        top_n = _int_param(request, "top_n", 15, minimum=1, maximum=1000)
        answer = self.get_queryset().top_applications(action=chosen, top_n=top_n)  # type: ignore[attr-defined]
        self._record_aggregate(request, "top_per_user")
        return Response(answer)

    @extend_schema(
        summary="Event volume per action in 6-hour buckets",
        parameters=[
            OpenApiParameter(
                "history_days", OpenApiTypes.INT, description="Days back (default 7, at most 90)."
            ),
        ],
        responses=VolumeSerializer(many=True),
    )
    @action(detail=False, pagination_class=None)
    def volume(self, request: Request) -> Response:
        days = _int_param(request, "history_days", 7, minimum=1, maximum=MAX_HISTORY.days)
        since = timezone.now() - timedelta(days=days)
        queryset = self.filter_queryset(self.get_queryset())
        if rollups.answerable(request.query_params):
            counted = rollups.counted_volume(request.query_params)
            rows = rollups.volume(since=since, rollups=counted, events=queryset)
        else:
            rows = queryset.volume(since=since)  # type: ignore[attr-defined]
        self._record_aggregate(request, "volume")
        # VolumeSerializer's JSON, built directly: 30 days are thousands of rows.
        zone = timezone.get_current_timezone()
        return Response(
            [
                {
                    "action": row["action"],
                    "time": iso_datetime(row["time"], zone),
                    "count": row["count"],
                }
                for row in compat.volume_for_client(rows)
            ]
        )

    @extend_schema(
        summary="Distinct users and event counts over time steps",
        parameters=[
            OpenApiParameter(
                "count_steps",
                OpenApiTypes.STR,
                many=True,
                required=True,
                description="Repeatable durations such as hours=24 or days=7 (at most 90 days).",
            ),
        ],
        responses=StatsSerializer,
    )
    @action(detail=False, pagination_class=None)
    def stats(self, request: Request) -> Response:
        raw_steps = request.query_params.getlist("count_steps")
        if not raw_steps:
            raise ValidationError({"count_steps": ["At least one count_steps value is required."]})
        steps: dict[str, timedelta] = {}
        errors: dict[str, list[str]] = {}
        for index, raw in enumerate(raw_steps):
            try:
                steps[slugify(raw).replace("-", "_")] = min(parse_duration(raw), MAX_HISTORY)
            except DurationFormatError as exc:
                errors[str(index)] = [str(exc)]
        if errors:
            raise ValidationError({"count_steps": errors})
        now = timezone.now()
        queryset = self.filter_queryset(self.get_queryset()).filter(created__gte=now - STATS_WINDOW)
        answer = queryset.stats(steps, now=now)  # type: ignore[attr-defined]
        self._record_aggregate(request, "stats")
        return Response(answer)

    @extend_schema(
        summary="Values for the search completion",
        parameters=[
            OpenApiParameter(
                "field",
                OpenApiTypes.STR,
                required=True,
                description="model.field, as in autocomplete.",
            ),
            OpenApiParameter("search", OpenApiTypes.STR, description="What the value contains."),
        ],
        filters=False,
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=False, pagination_class=None, filter_backends=[], url_path="suggestions")
    def suggestions(self, request: Request) -> Response:
        field = request.query_params.get("field", "")
        search = request.query_params.get("search", "").replace("\x00", "")
        try:
            items = suggest_values(field, search)
        except LookupError as exc:
            raise ValidationError({"field": [str(exc)]}) from None
        return Response({"items": items, "page": 1, "has_next": False})
