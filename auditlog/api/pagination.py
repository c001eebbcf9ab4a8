"""authentik's pagination: page numbers (0 for none), Django Paginator semantics, and the
search completion data alongside the results."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.paging import LargeTablePaginator

PAGE_SIZE_PARAM = "page_size"


def single_value(request: Request, name: str) -> str | None:
    """A query parameter the schema documents as one value; given more than once, a 400
    naming it (instead of silently using one of them)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ValidationError({name: ["Give this parameter once."]})
    return values[0] if values else None


WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def whole_number(request: Request, name: str) -> int | None:
    """A query parameter the schema documents as one integer: ``None`` when absent; empty,
    repeated or anything but a whole number in ASCII digits is a 400 naming it (Python's
    ``int()`` alone would also take `` 5``, ``1_000`` and other scripts' digits)."""
    raw = single_value(request, name)
    if raw is None:
        return None
    if raw == "":
        raise ValidationError({name: ["Must be a whole number, not empty."]})
    if not WHOLE_NUMBER.fullmatch(raw):
        raise ValidationError({name: [f"{raw!r} is not a whole number."]})
    return int(raw)


class Pagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = PAGE_SIZE_PARAM
    django_paginator_class = LargeTablePaginator

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return int(settings.API_MAX_PAGE_SIZE)

    def get_page_size(self, request: Request) -> int:
        size = whole_number(request, PAGE_SIZE_PARAM)
        if size is None:
            return self.page_size
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {PAGE_SIZE_PARAM: [f"Must be between 1 and {self.max_page_size}, not {size}."]}
            )
        return size

    def get_paginated_response(self, data: Any) -> Response:
        page = self.page
        assert page is not None, "paginate_queryset() runs first"
        return Response(
            {
                "pagination": {
                    "next": page.next_page_number() if page.has_next() else 0,
                    "previous": page.previous_page_number() if page.has_previous() else 0,
                    "count": page.paginator.count,
                    "current": page.number,
                    "total_pages": page.paginator.num_pages,
                    "start_index": page.start_index(),
                    "end_index": page.end_index(),
                },
                "results": data,
                "autocomplete": self.autocomplete(),
            }
        )

    def autocomplete(self) -> dict[str, Any]:
        view = getattr(self, "view", None)
        provider = getattr(view, "get_autocomplete", None)
        return provider() if provider is not None else {}

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        if single_value(request, self.page_query_param) == "":
            # DRF would read an empty page as the first one.
            raise ValidationError({self.page_query_param: ["Must be a whole number, not empty."]})
        self.view = view
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        number = {"type": "integer"}
        return {
            "type": "object",
            "required": ["pagination", "results", "autocomplete"],
            "properties": {
                "pagination": {
                    "type": "object",
                    "required": [
                        "next",
                        "previous",
                        "count",
                        "current",
                        "total_pages",
                        "start_index",
                        "end_index",
                    ],
                    "properties": {
                        "next": {**number, "description": "Next page number, 0 on the last."},
                        "previous": {**number, "description": "Previous page, 0 on the first."},
                        "count": number,
                        "current": number,
                        "total_pages": number,
                        "start_index": number,
                        "end_index": number,
                    },
                },
                "results": schema,
                "autocomplete": {"type": "object", "additionalProperties": {}},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "page",
                "required": False,
                "in": "query",
                "description": "A page number within the paginated result set (from 1).",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": PAGE_SIZE_PARAM,
                "required": False,
                "in": "query",
                "description": f"Results per page (1 to {self.max_page_size}, default 100).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
