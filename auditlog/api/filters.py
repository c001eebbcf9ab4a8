"""Query parameters of the event list (also accepted by volume/, stats/ and export/)."""

from __future__ import annotations

import ipaddress
from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from auditlog.models import Event, EventAction
from auditlog.search import SearchSchema, apply_search

# The databases' integer keys are signed 64-bit: a larger number cannot match anything, and
# handing it to the database driver fails (an overflow), so it is refused with a message.
MIN_ID, MAX_ID = -(2**63), 2**63 - 1


class IdFilter(django_filters.Filter):
    """An integer key: a whole number in the database's range, else a 400 that says so."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", MIN_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    def clean(self, value: Any) -> Any:
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("That date and time is out of range.") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time, compared in UTC: PostgreSQL refuses offsets beyond 15:59
    that ISO 8601 allows (``+23:45``), so the offset never reaches the database."""

    field_class = UTCDateTimeField


class IdsField(django_filters.fields.ModelMultipleChoiceField):
    def clean(self, value: Any) -> Any:
        for item in value or ():
            if str(item).lstrip("-").isdecimal() and not MIN_ID <= int(item) <= MAX_ID:
                raise forms.ValidationError(f"{item} is not a valid pk (out of range).")
        return super().clean(value)


class IdsFilter(django_filters.ModelMultipleChoiceFilter):
    """Repeatable integer keys of a model; an out-of-range number is a 400, not an overflow."""

    field_class = IdsField


class EventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(
        method="filter_action",
        help_text="Action contains (model_ matches all model events).",
    )
    actions = django_filters.MultipleChoiceFilter(
        field_name="action",
        choices=EventAction.choices,
        help_text="Exact actions (repeat the parameter).",
    )
    username = django_filters.CharFilter(
        method="filter_username",
        help_text="Events by the user, naming the user (context.username) or changing the user.",
    )
    client_ip = django_filters.CharFilter(
        method="filter_client_ip", help_text="Exact client address."
    )
    context_model_pk = django_filters.CharFilter(
        method="filter_model_pk", help_text="context.model.pk"
    )
    context_model_name = django_filters.CharFilter(
        field_name="context__model__model_name", help_text="context.model.model_name"
    )
    context_model_app = django_filters.CharFilter(
        field_name="context__model__app", help_text="context.model.app"
    )
    context_authorized_app = django_filters.CharFilter(
        method="filter_authorized_app", help_text="context.authorized_application.pk"
    )
    context_device = django_filters.CharFilter(
        method="filter_device", help_text="context.device.pk"
    )
    brand_name = django_filters.CharFilter(field_name="brand__name", help_text="brand.name")

    class Meta:
        model = Event
        fields: list[str] = []

    def filter_action(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        """authentik's ``action`` filter is a substring match. Known actions are a short list, so
        the substring becomes ``IN (matching actions)``, which an index serves and the planner
        estimates well; custom actions still match by substring."""
        needle = value.lower()
        known = [action for action in EventAction.values if needle in action]
        custom = Q(action__startswith=EventAction.CUSTOM_PREFIX, action__icontains=value)
        return queryset.filter(Q(action__in=known) | custom if known else custom)

    def filter_username(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return queryset.by_username(value)  # type: ignore[attr-defined]

    def filter_client_ip(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        try:
            address = str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValidationError(
                {"client_ip": [f"{value!r} is not a valid IP address."]}
            ) from None
        return queryset.filter(client_ip=address)

    def filter_model_pk(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        value = value.replace("-", "")
        condition = Q(context__model__pk=value)
        # isdecimal, not isdigit: int() reads every decimal digit, but not "¹" or "²".
        if value.lstrip("-").isdecimal() and MIN_ID <= int(value) <= MAX_ID:
            condition |= Q(context__model__pk=int(value))
        return queryset.filter(condition)

    def filter_authorized_app(
        self, queryset: QuerySet[Event], name: str, value: str
    ) -> QuerySet[Event]:
        return queryset.filter(context__authorized_application__pk=value.replace("-", ""))

    def filter_device(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return queryset.filter(context__device__pk=value.replace("-", ""))


class SearchFilter(filters.SearchFilter):
    """DRF's text search, except that a term it refuses (a NUL character) is a 400 naming
    ``search``; DRF's own answer is a bare list, which no client expects."""

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            return super().get_search_terms(request)
        except ValidationError as exc:
            raise ValidationError({self.search_param: exc.detail}) from None


class QLSearchFilter(filters.BaseFilterBackend):
    """``?search=``: DjangoQL against the view's ``search_schema``, or a text match."""

    search_param = "search"

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any], view: Any
    ) -> QuerySet[Any]:
        schema: type[SearchSchema] | None = getattr(view, "search_schema", None)
        search = request.query_params.get(self.search_param, "")
        if not search or schema is None:
            return queryset
        return apply_search(queryset, search, schema)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        if getattr(view, "search_schema", None) is None:
            return []
        return [
            {
                "name": self.search_param,
                "required": False,
                "in": "query",
                "description": (
                    'A DjangoQL query (e.g. action = "login" and context.geo.country = "DE"), '
                    "or plain text matched against the main fields. A malformed query is a 400."
                ),
                "schema": {"type": "string"},
            }
        ]


class OrderingError(ValueError):
    pass


def resolve_ordering(
    raw: str | None,
    *,
    allowed: set[str],
    aliases: dict[str, str],
    default: list[str],
    pk: str,
) -> list[str]:
    """``ordering=-created,action`` to ORM terms, with the pk as the last tie-breaker, so every
    page of a listing is stable. Unknown terms raise :class:`OrderingError`."""
    allowed = allowed | set(aliases)
    if raw:
        terms = [term.strip() for term in raw.split(",") if term.strip()]
        unknown = [term for term in terms if term.lstrip("-") not in allowed]
        if unknown:
            choices = ", ".join(sorted(allowed))
            raise OrderingError(f"Cannot order by {', '.join(unknown)}; use one of {choices}.")
        ordering = [_alias(term, aliases) for term in terms]
    else:
        ordering = list(default)
    if not any(term.lstrip("-") in (pk, "pk") for term in ordering):
        descending = bool(ordering) and ordering[0].startswith("-")
        ordering.append(f"-{pk}" if descending else pk)
    return ordering


def _alias(term: str, aliases: dict[str, str]) -> str:
    prefix = "-" if term.startswith("-") else ""
    name = term.lstrip("-")
    return prefix + aliases.get(name, name)


class StableOrderingFilter(filters.OrderingFilter):
    """``?ordering=`` over the view's fields, with the pk as the last tie-breaker.

    Unknown fields are a 400 rather than silently ignored; ``ordering_aliases`` map API names to
    lookups (``username`` → ``user__username``).
    """

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> list[str]:
        try:
            return resolve_ordering(
                request.query_params.get(self.ordering_param),
                allowed=set(getattr(view, "ordering_fields", [])),
                aliases=getattr(view, "ordering_aliases", {}),
                default=list(self.get_default_ordering(view) or []),
                pk=queryset.model._meta.pk.name,
            )
        except OrderingError as exc:
            raise ValidationError({self.ordering_param: [str(exc)]}) from None
