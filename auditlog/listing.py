"""Listings: which rows a list holds, in which order, for given query parameters.

One :class:`Listing` per listable model puts together its search schema (DjangoQL or plain
text), its filters (a django-filter ``FilterSet``) and its ordering, in that order. The list API
and the data exports both read through it (``events_for_listing`` here, ``users_for_listing``
in ``directory.listing``), so an export of the same parameters holds the same rows in the same
order as the list, and refuses the same bad parameters with the same messages. Nothing here
knows about HTTP or DRF: the API turns :class:`ListingError` into a 400, the export into the
reason it failed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Generic, TypeVar

import django_filters
from django import forms
from django.db import models
from django.db.models import Q, QuerySet
from django.http import QueryDict

from auditlog import compat
from auditlog.models import Alternative, Event, EventAction
from auditlog.search import EventSearchSchema, SearchSchema, apply_search

M = TypeVar("M", bound=models.Model)
Params = Mapping[str, str | list[str]] | QueryDict

SEARCH_PARAM = "search"
ORDERING_PARAM = "ordering"
# The databases' integer keys are signed 64-bit: a larger number cannot match anything, and
# handing it to the database driver fails (an overflow), so it is refused with a message.
MIN_ID, MAX_ID = -(2**63), 2**63 - 1
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class ListingError(ValueError):
    """Query parameters that cannot select anything: ``errors`` names each bad parameter with
    its messages (the API answers them as a 400 body, unchanged)."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        super().__init__(describe(self.errors))


class ListingRefused(Exception):
    """The user may not read this list at all."""


def describe(errors: Mapping[str, Sequence[str]]) -> str:
    """``errors`` as one line: ``client_ip: '1' is not a valid IP address.``."""
    return "; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items())


# --- Ordering -------------------------------------------------------------------------------


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


# --- The listing ----------------------------------------------------------------------------


def as_query_dict(params: Params) -> QueryDict:
    """Stored parameters (one value, or a list for a repeated key) as a request's query."""
    if isinstance(params, QueryDict):
        return params
    query = QueryDict(mutable=True)
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        query.setlist(key, [str(item) for item in values])
    query._mutable = False
    return query


@dataclass(frozen=True)
class Listing(Generic[M]):
    """How one model is listed: the rows a reader may list, then search, filters and ordering
    applied to them from query parameters."""

    rows: Callable[[], QuerySet[M]]
    view_permission: str
    plural: str
    filterset: type[django_filters.FilterSet] | None = None
    search_schema: type[SearchSchema] | None = None
    ordering: tuple[str, ...] = ()
    ordering_fields: tuple[str, ...] = ()
    ordering_aliases: Mapping[str, str] = field(default_factory=dict)

    def for_user(self, *, user: Any, params: Params) -> QuerySet[M]:
        """What ``user`` gets from the list for ``params``. Raises :class:`ListingRefused`
        when the user may not read the list, :class:`ListingError` for bad parameters and
        ``auditlog.search.SearchError`` / ``DjangoQLError`` for a bad search."""
        if user is None or not user.is_authenticated or not user.has_perm(self.view_permission):
            raise ListingRefused(f"You may not view {self.plural}.")
        return self.apply(self.rows(), params)

    def apply(self, queryset: QuerySet[M], params: Params) -> QuerySet[M]:
        """Search, then filter, then order ``queryset`` by ``params`` (the list API's steps,
        in its order)."""
        query = as_query_dict(params)
        return self.order(self.filter(self.search(queryset, query), query), query)

    def search(self, queryset: QuerySet[M], query: QueryDict) -> QuerySet[M]:
        text = query.get(SEARCH_PARAM, "")
        if not text or self.search_schema is None:
            return queryset
        return apply_search(queryset, text, self.search_schema)

    def filter(self, queryset: QuerySet[M], query: QueryDict) -> QuerySet[M]:
        if self.filterset is None or not self._filters_given(query):
            # Without any of its parameters the filterset selects every row; building it (its
            # form's fields copied, the action choices normalised) was a third of an
            # unfiltered page's time.
            return queryset
        filterset = self.filterset(data=query, queryset=queryset)
        if not filterset.is_valid():
            raise ListingError(
                {
                    key: [error.message % (error.params or ()) for error in errors]
                    for key, errors in filterset.errors.as_data().items()
                }
            )
        return filterset.qs

    def _filters_given(self, query: QueryDict) -> bool:
        """Whether ``query`` may hold a value for any of the filterset's filters: a parameter
        named as one, or as one with a suffix (``name_min``, ``name_after``: a range's). The
        base filters' form fields are not touched (built once, they would be deep-copied
        into every filterset after)."""
        assert self.filterset is not None
        names = tuple(self.filterset.base_filters)
        prefixes = tuple(f"{name}_" for name in names)
        return any(key in names or key.startswith(prefixes) for key in query)

    def order(self, queryset: QuerySet[M], query: QueryDict) -> QuerySet[M]:
        try:
            ordering = resolve_ordering(
                query.get(ORDERING_PARAM),
                allowed=set(self.ordering_fields),
                aliases=dict(self.ordering_aliases),
                default=list(self.ordering),
                pk=queryset.model._meta.pk.name,
            )
        except OrderingError as exc:
            raise ListingError({ORDERING_PARAM: [str(exc)]}) from None
        return queryset.order_by(*ordering) if ordering else queryset


# --- Filter fields shared by the listings ---------------------------------------------------


class IdField(forms.IntegerField):
    """A whole number written as one: ``7`` or ``-7``, not ``7.0`` or ``7e0`` (which Django's
    IntegerField would read as 7, though the schema calls them invalid)."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and value.strip() and not WHOLE_NUMBER.fullmatch(value):
            raise forms.ValidationError("Enter a whole number.", code="invalid")
        return super().to_python(value)  # type: ignore[no-any-return]


class IdFilter(django_filters.Filter):
    """An integer key: a whole number in the database's range, else a 400 that says so."""

    field_class = IdField

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


# --- Events ---------------------------------------------------------------------------------


BOOLEAN_VALUES = frozenset({"true", "false", "1", "0"})


def boolean_problem(raw: str) -> str | None:
    """Why ``raw`` is not a boolean query value (``None``: it is one)."""
    return None if raw.strip().lower() in BOOLEAN_VALUES else "Must be true or false."


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet that holds query parameters to the types the schema gives them.

    django-filter ignores an empty value, and reads an unknown boolean as "not given", so a
    request the OpenAPI schema calls invalid would quietly list everything; here a boolean
    must be true or false, and only a plain text filter may be empty: anything else is a 400
    naming the parameter."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            raws = self.data.getlist(name) if hasattr(self.data, "getlist") else []
            if len(raws) > 1 and not repeatable(filter_) and name not in self.form.errors:
                # django-filter would quietly use the last one.
                self.form.add_error(name, "Give this parameter once.")
                valid = False
            for raw in raws:
                problem = _query_value_problem(filter_, str(raw))
                if problem and name not in self.form.errors:
                    self.form.add_error(name, problem)
                    valid = False
        return valid


def repeatable(filter_: django_filters.Filter) -> bool:
    """Whether a filter takes several values (documented as an exploded array)."""
    return isinstance(filter_, django_filters.MultipleChoiceFilter)


def _query_value_problem(filter_: django_filters.Filter, raw: str) -> str | None:
    if isinstance(filter_, django_filters.BooleanFilter):
        return boolean_problem(raw)
    if raw != "":
        return None
    plain_text = type(filter_) is django_filters.CharFilter
    return None if plain_text else "This value may not be empty."


def matching_any(
    queryset: QuerySet[M], *alternatives: Alternative, where: Q | None = None
) -> QuerySet[M]:
    """``queryset`` filtered by any of ``alternatives`` (or by ``where``, the same rows): for
    events, known as alternatives that paging walks one by one
    (``EventQuerySet.matching_any``); the filters also serve other tables (the roll-ups)."""
    method = getattr(queryset, "matching_any", None)
    if method is not None:
        return method(*alternatives, where=where)  # type: ignore[no-any-return]
    return queryset.filter(where if where is not None else Alternative.any_of(alternatives))


class EventFilter(StrictFilterSet):
    """Query parameters of the event list (also accepted by volume/, stats/ and export/)."""

    action = django_filters.CharFilter(
        method="filter_action",
        help_text="Action contains (model_ matches all model events).",
    )
    actions = django_filters.MultipleChoiceFilter(
        method="filter_actions",
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
        known = [
            stored
            for action in EventAction.values
            if needle in action
            for stored in compat.stored_actions_for(action)
        ]
        custom = Q(action__startswith=EventAction.CUSTOM_PREFIX, action__icontains=value)
        if not known:
            return queryset.filter(custom)
        return matching_any(
            queryset,
            *(Alternative.equal("action", action) for action in known),
            Alternative(also=custom),
            where=Q(action__in=known) | custom,
        )

    def filter_actions(
        self, queryset: QuerySet[Event], name: str, value: list[str]
    ) -> QuerySet[Event]:
        """Exact actions, each with the stored newer actions answered as it (compat.py)."""
        if not value:
            return queryset
        stored = [each for action in value for each in compat.stored_actions_for(action)]
        return matching_any(
            queryset,
            *(Alternative.equal("action", action) for action in stored),
            where=Q(action__in=stored),
        )

    def filter_username(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return queryset.by_username(value)  # type: ignore[attr-defined]

    def filter_client_ip(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        try:
            address = str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ListingError({"client_ip": [f"{value!r} is not a valid IP address."]}) from None
        return queryset.filter(client_ip=address)

    def filter_model_pk(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        value = value.replace("-", "")
        alternatives = [Alternative.equal("context__model__pk", value)]
        # isdecimal, not isdigit: int() reads every decimal digit, but not "¹" or "²".
        if value.lstrip("-").isdecimal() and MIN_ID <= int(value) <= MAX_ID:
            alternatives.append(Alternative.equal("context__model__pk", int(value)))
        return matching_any(queryset, *alternatives)

    def filter_authorized_app(
        self, queryset: QuerySet[Event], name: str, value: str
    ) -> QuerySet[Event]:
        return queryset.filter(context__authorized_application__pk=value.replace("-", ""))

    def filter_device(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return queryset.filter(context__device__pk=value.replace("-", ""))


EVENT_LISTING: Listing[Event] = Listing(
    rows=Event.objects.all,
    view_permission="auditlog.view_event",
    plural="events",
    filterset=EventFilter,
    search_schema=EventSearchSchema,
    ordering=("-created",),
    ordering_fields=(
        "event_uuid",
        "user",
        "action",
        "app",
        "context",
        "client_ip",
        "created",
        "expires",
        "brand",
    ),
    ordering_aliases={
        "pk": "event_uuid",
        "username": "user__username",
        "brand_name": "brand__name",
    },
)


def events_for_listing(*, user: Any, params: Params) -> QuerySet[Event]:
    """The events of ``GET /api/v3/events/events/?<params>`` for ``user``, in the list's
    order (see :meth:`Listing.for_user` for what it raises)."""
    return EVENT_LISTING.for_user(user=user, params=params)
