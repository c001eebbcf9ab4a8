"""``/api/v3/events/saved_searches/``: the signed-in user's saved searches and the shared ones.

Reading and saving searches needs ``auditlog.view_event``; a search is changed or deleted by
its owner (and a shared one also by a publisher); anyone who sees a search may pin it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import StableOrderingFilter
from searches.api.serializers import SavedSearchSerializer
from searches.models import SavedSearch
from searches.services import SavedSearchError, may_change, save_search, set_pinned

VIEW_EVENT = "auditlog.view_event"
ONLY_OWNER = "Only the owner (or a publisher, for a shared one) may %s it."


class MayReadEvents(BasePermission):
    message = f"You do not have the permission: {VIEW_EVENT}."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(VIEW_EVENT))


def _error(exc: SavedSearchError) -> ValidationError:
    field, _, message = str(exc).partition(": ")
    if field in {"name", "query", "filters", "shared", "ordering"} and message:
        return ValidationError({field: [message]})
    return ValidationError({"detail": str(exc)})


@extend_schema_view(
    list=extend_schema(summary="Your saved searches and the shared ones"),
    create=extend_schema(summary="Save a search (shared: needs searches.publish_savedsearch)"),
    partial_update=extend_schema(summary="Rename, change, share or pin a saved search"),
)
class SavedSearchViewSet(viewsets.ModelViewSet):
    serializer_class = SavedSearchSerializer
    permission_classes = [MayReadEvents]
    filter_backends = [StableOrderingFilter]
    ordering = ["name"]
    ordering_fields = ["name", "created", "updated"]
    ordering_aliases: dict[str, str] = {}

    def get_queryset(self) -> QuerySet[SavedSearch]:
        return SavedSearch.objects.visible_to(self.request.user).select_related("owner")

    def _write(self, request: Request, instance: SavedSearch | None) -> Response:
        serializer = self.get_serializer(instance, data=request.data, partial=instance is not None)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        changes = set(data) - {"pinned"}
        if instance is not None and changes and not may_change(instance, user):
            raise PermissionDenied(ONLY_OWNER % "change")
        saved = instance
        if instance is None or changes:
            current: dict[str, Any] = {
                "name": instance.name if instance else "",
                "query": instance.query if instance else "",
                "filters": instance.filters if instance else {},
                "ordering": instance.ordering if instance else "",
                "shared": instance.shared if instance else False,
            }
            current.update({key: data[key] for key in changes})
            try:
                saved = save_search(user=user, instance=instance, **current)
            except SavedSearchError as exc:
                raise _error(exc) from None
        assert saved is not None
        if "pinned" in data:
            set_pinned(saved, user, data["pinned"])
        answer = self.get_serializer(saved).data
        return Response(answer, status=status.HTTP_200_OK if instance else status.HTTP_201_CREATED)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._write(request, None)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._write(request, self.get_object())

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        saved = self.get_object()
        if not may_change(saved, request.user):
            raise PermissionDenied(ONLY_OWNER % "delete")
        saved.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
