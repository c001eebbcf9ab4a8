"""The user list's rows, search, filters and ordering (see :mod:`auditlog.listing`): read by
``GET /api/v3/core/users/`` and by the user exports alike."""

from __future__ import annotations

import json
from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field

from auditlog.listing import Listing, ListingError, Params, StrictFilterSet
from directory.models import Group, User, UserQuerySet, UserType
from directory.search import UserSearchSchema


def filter_attributes(queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
    """``attributes={"key": value}`` → ``attributes__key=value`` for each key."""
    try:
        wanted = json.loads(value)
    except ValueError:
        raise ListingError({"attributes": ["filter: failed to parse JSON"]}) from None
    if not isinstance(wanted, dict):
        raise ListingError({"attributes": ["filter: expected a JSON object"]})
    for key, expected in wanted.items():
        queryset = queryset.filter(**{f"attributes__{key}": expected})
    return queryset


def names_filter(help_text: str, **kwargs: Any) -> django_filters.ModelMultipleChoiceFilter:
    """A repeatable filter by name (``?groups_by_name=a&groups_by_name=b``), described as strings
    in the schema (drf-spectacular cannot infer the type of ``to_field_name``)."""
    described = extend_schema_field({"type": "string", "description": help_text})
    filter_class = described(type("NamesFilter", (django_filters.ModelMultipleChoiceFilter,), {}))
    return filter_class(help_text=help_text, **kwargs)


class UserFilter(StrictFilterSet):
    username = django_filters.CharFilter(help_text="Exact username.")
    email = django_filters.CharFilter(help_text="Exact email address.")
    name = django_filters.CharFilter(help_text="Exact display name.")
    is_active = django_filters.BooleanFilter(
        help_text="Active (true) or deactivated (false) users."
    )
    is_superuser = django_filters.BooleanFilter(
        method="filter_is_superuser", help_text="Members of a superuser group."
    )
    uuid = django_filters.UUIDFilter(help_text="The user's UUID.")
    path = django_filters.CharFilter(help_text="Exact path.")
    path_startswith = django_filters.CharFilter(
        field_name="path", lookup_expr="startswith", help_text="Path starts with."
    )
    type = django_filters.MultipleChoiceFilter(
        choices=UserType.choices, help_text="User types (repeatable)."
    )
    groups_by_name = names_filter(
        "Members of these groups, by name (repeatable).",
        field_name="groups__name",
        to_field_name="name",
        queryset=Group.objects.all(),
    )
    groups_by_pk = django_filters.ModelMultipleChoiceFilter(
        field_name="groups",
        queryset=Group.objects.all(),
        help_text="Members of these groups, by pk (repeatable).",
    )
    attributes = django_filters.CharFilter(
        method="filter_attributes", help_text='A JSON object, e.g. {"department": "Sales"}.'
    )

    class Meta:
        model = User
        fields: list[str] = []

    def filter_is_superuser(
        self, queryset: QuerySet[User], name: str, value: bool
    ) -> QuerySet[User]:
        return queryset.filter(**{"_is_superuser": value})  # annotated by listed_users()

    def filter_attributes(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return filter_attributes(queryset, value)


def listed_users() -> UserQuerySet:
    """Every user but the anonymous stand-in, with the superuser flag and the groups (by name)
    that the list shows."""
    return (
        User.objects.exclude_anonymous()
        .with_superuser_flag()
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
    )


USER_LISTING: Listing[User] = Listing(
    rows=listed_users,
    view_permission="directory.view_user",
    plural="users",
    filterset=UserFilter,
    search_schema=UserSearchSchema,
    ordering=("username",),
    ordering_fields=(
        "id",
        "username",
        "name",
        "email",
        "is_active",
        "last_login",
        "date_joined",
        "type",
        "path",
    ),
    ordering_aliases={"pk": "id"},
)


def users_for_listing(*, user: Any, params: Params) -> QuerySet[User]:
    """The users of ``GET /api/v3/core/users/?<params>`` for ``user``, in the list's order
    (see :meth:`auditlog.listing.Listing.for_user` for what it raises)."""
    return USER_LISTING.for_user(user=user, params=params)
