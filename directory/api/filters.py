"""Query parameters of the group and token lists (the user list's are in
``directory.listing``)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from auditlog.listing import IdsFilter, StrictFilterSet
from directory.listing import UserFilter, filter_attributes, names_filter
from directory.models import Group, Token, TokenIntent, User

__all__ = ["GroupFilter", "TokenFilter", "UserFilter"]


class GroupFilter(StrictFilterSet):
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


class TokenFilter(StrictFilterSet):
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
