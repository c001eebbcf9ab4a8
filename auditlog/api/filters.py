"""Filter backends of the API's lists. The event and user lists filter through their
:class:`~auditlog.listing.Listing` (see :class:`ListingFilterMixin`), the one the exports read
too; the backends below stay on those views to describe the parameters in the schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.db.models import QuerySet
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from auditlog.listing import (
    EventFilter,
    IdFilter,
    IdsFilter,
    Listing,
    ListingError,
    OrderingError,
    StrictFilterSet,
    UTCDateTimeFilter,
    boolean_problem,
    resolve_ordering,
)
from auditlog.search import SearchSchema, apply_search

__all__ = [
    "EventFilter",
    "IdFilter",
    "IdsFilter",
    "ListingFilterMixin",
    "OrderingError",
    "QLSearchFilter",
    "SearchFilter",
    "StableOrderingFilter",
    "StrictFilterSet",
    "UTCDateTimeFilter",
    "boolean_problem",
    "resolve_ordering",
]


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


if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _ListView = GenericAPIView
else:
    _ListView = object


class ListingFilterMixin(_ListView):
    """For a viewset whose list is a :class:`~auditlog.listing.Listing`: its search, filters and
    ordering are the listing's, so the list and an export of the same parameters agree.

    The filter attributes the schema generator and the backends read (``filterset_class``,
    ``search_schema``, ``ordering``...) are copied from ``listing``; an action declared with
    ``filter_backends=[]`` takes no filters, as in DRF.
    """

    listing: ClassVar[Listing[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        listing = cls.__dict__.get("listing")
        if listing is not None:
            cls.filterset_class = listing.filterset  # type: ignore[attr-defined]
            cls.search_schema = listing.search_schema  # type: ignore[attr-defined]
            cls.ordering = list(listing.ordering)  # type: ignore[attr-defined]
            cls.ordering_fields = list(listing.ordering_fields)  # type: ignore[attr-defined]
            cls.ordering_aliases = dict(listing.ordering_aliases)  # type: ignore[attr-defined]

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.filter_backends:
            return queryset
        try:
            return self.listing.apply(queryset, self.request.query_params)
        except ListingError as exc:
            raise ValidationError(exc.errors) from None
