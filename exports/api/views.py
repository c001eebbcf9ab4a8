"""``/api/v3/reports/exports/``: the data exports the user may see (list, one, delete,
download)."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from auditlog.api.filters import SearchFilter, StableOrderingFilter
from exports.api.serializers import DataExportSerializer
from exports.files import file_response
from exports.models import (
    ADD_PERMISSION,
    DELETE_PERMISSION,
    VIEW_PERMISSION,
    DataExport,
    DataExportQuerySet,
)
from exports.services import delete_export


class UsesExports(BasePermission):
    """Users who may export or may see others' exports; which exports they see is limited by
    :meth:`DataExportQuerySet.visible_to`."""

    message = "You do not have permission to use data exports."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return bool(user.has_perm(ADD_PERMISSION) or user.has_perm(VIEW_PERMISSION))


@extend_schema_view(
    list=extend_schema(summary="Data exports, newest first"),
    retrieve=extend_schema(summary="One data export"),
    destroy=extend_schema(summary="Delete a data export and its file"),
)
class DataExportViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your exports (all of them with exports.view_dataexport), only ever of the models you may
    view."""

    serializer_class = DataExportSerializer
    permission_classes = [UsesExports]
    filter_backends = [SearchFilter, StableOrderingFilter]
    search_fields = ["requested_by__username", "content_type__model"]
    ordering = ["-requested_on"]
    ordering_fields = ["completed", "requested_by", "requested_on", "content_type__model"]

    def get_queryset(self) -> DataExportQuerySet:
        if getattr(self, "swagger_fake_view", False):
            return DataExport.objects.none()
        return DataExport.objects.visible_to(self.request.user).select_related(
            "requested_by", "content_type"
        )

    def perform_destroy(self, instance: DataExport) -> None:
        user = self.request.user
        if instance.requested_by_id != user.pk and not user.has_perm(DELETE_PERMISSION):
            raise PermissionDenied("You may only delete your own exports.")
        delete_export(export=instance)

    @extend_schema(
        summary="Download the export's file",
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/jsonl"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="Not visible to you, not ready, or failed."),
        },
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        export = get_object_or_404(self.get_queryset().downloadable(), pk=pk)
        return file_response(export, via="api")
