"""``/api/v3/core/``: users, groups and tokens."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import ListingFilterMixin, QLSearchFilter, StableOrderingFilter
from auditlog.api.permissions import IsAuthenticated
from auditlog.models import EventAction
from auditlog.sanitize import model_to_dict
from auditlog.services import record_event
from directory.api.filters import GroupFilter, TokenFilter
from directory.api.serializers import (
    GroupSerializer,
    PasswordSerializer,
    TokenKeySerializer,
    TokenSerializer,
    UserPkSerializer,
    UserSerializer,
    checked_flag,
)
from directory.listing import USER_LISTING, listed_users
from directory.models import Group, Token, User
from directory.search import GroupSearchSchema

INCLUDE_GROUPS = OpenApiParameter(
    "include_groups", OpenApiTypes.BOOL, description="Include groups_obj (default true)."
)
INCLUDE_ROLES = OpenApiParameter(
    "include_roles", OpenApiTypes.BOOL, description="Include roles_obj (default true)."
)
INCLUDE_USERS = OpenApiParameter(
    "include_users", OpenApiTypes.BOOL, description="Include users_obj (default true)."
)
GROUP_INCLUDES = [
    INCLUDE_USERS,
    *(
        OpenApiParameter(f"include_{name}", OpenApiTypes.BOOL, description=f"Include {name}_obj.")
        for name in ("children", "parents", "inherited_roles")
    ),
]
ADMINS_ONLY = "Only administrators can change administrators."


class IncludeFlagsMixin:
    """Checks the ``include_*`` flags a list or detail documents before anything is read: the
    serializer reads them only for the objects it shows, so an invalid flag on an empty page
    would otherwise be accepted."""

    include_flags: tuple[OpenApiParameter, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if getattr(self, "action", None) in ("list", "retrieve"):
            for flag in self.include_flags:
                checked_flag(request.query_params, flag.name)


def _ensure_may_change(
    request: Request, target_is_superuser: bool, message: str = ADMINS_ONLY
) -> None:
    if target_is_superuser and not request.user.is_superuser:
        raise PermissionDenied(message)


@extend_schema_view(
    list=extend_schema(summary="List users", parameters=[INCLUDE_GROUPS, INCLUDE_ROLES]),
    retrieve=extend_schema(summary="One user", parameters=[INCLUDE_GROUPS, INCLUDE_ROLES]),
)
class UserViewSet(IncludeFlagsMixin, ListingFilterMixin, viewsets.ModelViewSet):
    """Users (the anonymous stand-in is never listed). Changes are audited with diffs."""

    include_flags = (INCLUDE_GROUPS, INCLUDE_ROLES)
    serializer_class = UserSerializer
    # Search, filters and ordering are the listing's, which the exports read too.
    listing = USER_LISTING
    filter_backends = [QLSearchFilter, DjangoFilterBackend, StableOrderingFilter]
    action_permissions = {"set_password": ["directory.change_user"]}

    def get_queryset(self) -> QuerySet[User]:
        return listed_users()

    def perform_update(self, serializer: Any) -> None:
        _ensure_may_change(self.request, serializer.instance.is_superuser)
        serializer.save()

    def perform_destroy(self, instance: User) -> None:
        _ensure_may_change(self.request, instance.is_superuser)
        if instance.pk == self.request.user.pk:
            raise PermissionDenied("You cannot delete yourself.")
        instance.delete()

    @extend_schema(
        summary="Set a user's password", request=PasswordSerializer, responses={204: None}
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def set_password(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        _ensure_may_change(request, user.is_superuser and user.pk != request.user.pk)
        serializer = PasswordSerializer(data=request.data, context={"user": user})
        serializer.is_valid(raise_exception=True)
        user.set_password(serializer.validated_data["password"])
        user.save()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List groups", parameters=GROUP_INCLUDES),
    retrieve=extend_schema(summary="One group", parameters=GROUP_INCLUDES),
)
class GroupViewSet(IncludeFlagsMixin, viewsets.ModelViewSet):
    """Groups and their members. Membership changes are audited as many-to-many diffs."""

    include_flags = tuple(GROUP_INCLUDES)
    serializer_class = GroupSerializer
    filter_backends = [QLSearchFilter, DjangoFilterBackend, StableOrderingFilter]
    filterset_class = GroupFilter
    search_schema = GroupSearchSchema
    ordering = ["name"]
    ordering_fields = ["name", "num_pk", "is_superuser", "group_uuid"]
    ordering_aliases = {"pk": "group_uuid"}
    action_permissions = {
        "add_user": ["directory.change_group"],
        "remove_user": ["directory.change_group"],
    }

    def get_queryset(self) -> QuerySet[Group]:
        return Group.objects.select_related("parent").prefetch_related(
            "children",
            Prefetch("users", queryset=User.objects.exclude_anonymous().order_by("pk")),
        )

    def perform_destroy(self, instance: Group) -> None:
        _ensure_may_change(self.request, instance.is_superuser)
        instance.delete()

    def _member_change(self, request: Request, adding: bool) -> Response:
        group = self.get_object()
        _ensure_may_change(request, group.is_superuser)
        serializer = UserPkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_object_or_404(
            User.objects.exclude_anonymous(), pk=serializer.validated_data["pk"]
        )
        with transaction.atomic():
            (group.users.add if adding else group.users.remove)(user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Add a user to the group",
        request=UserPkSerializer,
        responses={204: None, 404: None},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def add_user(self, request: Request, pk: str | None = None) -> Response:
        return self._member_change(request, adding=True)

    @extend_schema(
        summary="Remove a user from the group",
        request=UserPkSerializer,
        responses={204: None, 404: None},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def remove_user(self, request: Request, pk: str | None = None) -> Response:
        return self._member_change(request, adding=False)


class TokenViewSet(viewsets.ModelViewSet):
    """API tokens and app passwords. Keys are never listed; view_key shows one (and is audited)."""

    serializer_class = TokenSerializer
    lookup_field = "identifier"
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    filterset_class = TokenFilter
    ordering = ["identifier"]
    ordering_fields = ["identifier", "expires", "intent", "token_uuid"]
    ordering_aliases = {"pk": "token_uuid"}

    def get_queryset(self) -> QuerySet[Token]:
        return Token.objects.select_related("user").prefetch_related("user__groups")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # No identifier holds a NUL, and PostgreSQL cannot even compare text with one.
        if "\x00" in str(kwargs.get(self.lookup_field, "")):
            raise NotFound()

    @extend_schema(summary="Show a token's key", responses=TokenKeySerializer)
    @action(
        detail=True, pagination_class=None, filter_backends=[], permission_classes=[IsAuthenticated]
    )
    def view_key(self, request: Request, identifier: str | None = None) -> Response:
        token = get_object_or_404(Token.objects.select_related("user"), identifier=identifier)
        if token.user_id != request.user.pk and not request.user.has_perm(
            "directory.view_token_key"
        ):
            raise PermissionDenied("You do not have permission to view this token's key.")
        record_event(
            action=EventAction.SECRET_VIEW,
            app="directory.api",
            context={"secret": model_to_dict(token)},
        )
        return Response({"key": token.key})
