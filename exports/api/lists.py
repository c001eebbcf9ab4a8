"""``POST <list>/export/`` of the event and user lists: an export of exactly what the list
would return. The views live here, not on the list viewsets, so that ``auditlog`` and
``directory`` know nothing of exports; they filter through the lists' own
:class:`~auditlog.listing.Listing`, so the parameters mean what they mean on the list."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import EmptyResultSet, FieldError
from django.db import models
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from auditlog.api.filters import ListingFilterMixin, QLSearchFilter, StableOrderingFilter
from auditlog.listing import EVENT_LISTING, Listing
from auditlog.reads import Read, record_read
from directory.listing import USER_LISTING
from exports.api.serializers import DataExportSerializer
from exports.files import export_model
from exports.models import ADD_PERMISSION, ExportFormat
from exports.services import ExportQueueUnavailable, request_export, stored_query_params

FORMAT_PARAMETER = "format"


class _WithoutFormatOverride:
    """DRF's settings, except that ``?format=`` does not pick a renderer."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> Any:
        return getattr(api_settings, name)


class ExportNegotiation(DefaultContentNegotiation):
    """On ``export/``, ``?format=csv|jsonl`` is the file's format; without this DRF would take
    it for a renderer and answer 404. The answer is JSON, chosen by the Accept header."""

    settings = _WithoutFormatOverride()  # type: ignore[assignment]


class CanExport(BasePermission):
    """``exports.add_dataexport`` and the permission to view the exported model."""

    message = "You do not have permission to export this list."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        opts = view.get_queryset().model._meta
        return bool(user.has_perms([ADD_PERMISSION, f"{opts.app_label}.view_{opts.model_name}"]))


class QueueUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The background task queue is unavailable. Try again later."
    default_code = "queue_unavailable"


class ListExportView(ListingFilterMixin, GenericAPIView):
    """``export/`` of a list: the same filters, search, ordering and permissions as the list,
    checked up front, then built in the background."""

    listing: ClassVar[Listing[Any]]
    permission_classes = [CanExport]
    content_negotiation_class = ExportNegotiation
    pagination_class = None
    serializer_class = DataExportSerializer
    # What the schema documents; the filtering itself is the listing's.
    filter_backends = [QLSearchFilter, DjangoFilterBackend, StableOrderingFilter]

    def get_queryset(self) -> models.QuerySet[Any]:
        return self.listing.rows()

    @extend_schema(
        summary="Export the list (CSV or JSON Lines) in the background",
        description=(
            "Takes the list's query parameters. Needs exports.add_dataexport and the permission "
            "to view the list. The file is built in the background: poll "
            "/api/v3/reports/exports/{id}/ (the Location header) until completed."
        ),
        request=None,
        filters=True,
        parameters=[
            OpenApiParameter(
                FORMAT_PARAMETER,
                OpenApiTypes.STR,
                enum=list(ExportFormat.values),
                description="The file format: csv (default) or jsonl (one JSON object a line).",
            )
        ],
        responses={
            201: DataExportSerializer,
            400: OpenApiResponse(description="A filter, the search or the ordering is invalid."),
            403: OpenApiResponse(description="No permission to export this list."),
            503: OpenApiResponse(description="The background task queue is unavailable."),
        },
    )
    def post(self, request: Request) -> Response:
        export_format = _export_format(request)
        _refuse_nul_characters(request)
        queryset = self.filter_queryset(self.get_queryset())
        _compile(queryset)
        try:
            export = request_export(
                user=request.user,  # type: ignore[arg-type]
                model=queryset.model,
                query_params=stored_query_params(request.query_params),
                export_format=export_format,
            )
        except ExportQueueUnavailable as exc:
            raise QueueUnavailable(str(exc)) from None
        record_read(
            kind=Read.EXPORT_REQUEST,
            via="api",
            what={
                "export": {"pk": str(export.pk), "model": export_model(export)},
                "query": export.query_params,
                "format": export.format,
            },
        )
        body = DataExportSerializer(export, context={"request": request}).data
        location = reverse("dataexport-detail", kwargs={"pk": export.pk})
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


def _export_format(request: Request) -> str:
    value = request.query_params.get(FORMAT_PARAMETER, ExportFormat.CSV)
    if value not in ExportFormat.values:
        choices = ", ".join(ExportFormat.values)
        raise ValidationError({FORMAT_PARAMETER: [f"{value!r} is not a format; use {choices}."]})
    return value


def _refuse_nul_characters(request: Request) -> None:
    """The parameters are stored as JSON, and PostgreSQL's JSON cannot hold a NUL character."""
    for key, values in request.query_params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            name = key.replace("\x00", "") or "query"
            raise ValidationError({name: ["Null characters are not allowed."]})


def _compile(queryset: models.QuerySet[Any]) -> None:
    """Compile the SQL without running it, so a filter that only fails there is a 400 now
    rather than a failed export later."""
    try:
        queryset.query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:
        pass  # a filter that matches nothing: an empty file, not an error
    except (FieldError, ValueError, TypeError) as exc:
        raise ValidationError({"detail": [str(exc)]}) from None


class EventExportView(ListExportView):
    """``POST /api/v3/events/events/export/``."""

    listing = EVENT_LISTING


class UserExportView(ListExportView):
    """``POST /api/v3/core/users/export/``."""

    listing = USER_LISTING
