"""Query parameters of the user and group lists."""

from __future__ import annotations

import json
from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from auditlog.api.filters import IdsFilter
from directory.models import Group, Token, TokenIntent, User, UserType


def filter_attributes(queryset: QuerySet[Any], value: str) -> QuerySet[Any]:
    """``attributes={"key": value}`` → ``attributes__key=value`` for each key."""
    try:
        wanted = json.loads(value)
    except ValueError:
        raise ValidationError({"attributes": ["filter: failed to parse JSON"]}) from None
    if not isinstance(wanted, dict):
        raise ValidationError({"attributes": ["filter: expected a JSON object"]})
    for key, expected in wanted.items():
        queryset = queryset.filter(**{f"attributes__{key}": expected})
    return queryset


def names_filter(help_text: str, **kwargs: Any) -> django_filters.ModelMultipleChoiceFilter:
    """A repeatable filter by name (``?groups_by_name=a&groups_by_name=b``), described as strings
    in the schema (drf-spectacular cannot infer the type of ``to_field_name``)."""
    described = extend_schema_field({"type": "string", "description": help_text})
    filter_class = described(type("NamesFilter", (django_filters.ModelMultipleChoiceFilter,), {}))
    return filter_class(help_text=help_text, **kwargs)


class UserFilter(django_filters.FilterSet):
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
        return queryset.filter(**{"_is_superuser": value})  # annotated by the view

    def filter_attributes(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return filter_attributes(queryset, value)


class GroupFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(help_text="Exact group name.")
    is_superuser = django_filters.BooleanFilter(help_text="Superuser groups (true) or not (false).")
    members_by_pk = IdsFilter(
        field_name="users",
        queryset=User.objects.all(),
        help_text="Groups with these members, by pk (repeatable).",
    )
    members_by_username = names_filter(
        "Groups with these members, by username (repeatable).",
        field_name="users__username",
        to_field_name="username",
        queryset=User.objects.all(),
    )
    attributes = django_filters.CharFilter(
        method="filter_attributes", help_text='A JSON object, e.g. {"notes": "x"}.'
    )

    class Meta:
        model = Group
        fields: list[str] = []

    def filter_attributes(
        self, queryset: QuerySet[Group], name: str, value: str
    ) -> QuerySet[Group]:
        return filter_attributes(queryset, value)


class TokenFilter(django_filters.FilterSet):
    identifier = django_filters.CharFilter(help_text="Exact identifier.")
    intent = django_filters.MultipleChoiceFilter(
        choices=TokenIntent.choices, help_text="Intents (repeatable)."
    )
    user__username = django_filters.CharFilter(help_text="The owner's username.")
    description = django_filters.CharFilter(
        lookup_expr="icontains", help_text="Description contains."
    )
    expiring = django_filters.BooleanFilter(
        help_text="Tokens that expire (true) or never do (false)."
    )
    managed = django_filters.CharFilter(help_text="Exact managed marker.")

    class Meta:
        model = Token
        fields: list[str] = []
