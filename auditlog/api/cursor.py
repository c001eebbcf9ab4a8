"""The event list's gap-free pull cursor: ``GET /api/v3/events/events/?after=<position>``.

A position is a chain sequence (:mod:`auditlog.positions`). With ``after``, the list answers
the events sealed after that position, oldest first in commit order, through the same search,
filters and permissions as the plain list, and says where to ask from next. A poller that
keeps asking ``after=<next_position>`` sees every event exactly once, including one whose
transaction committed after a later-created event was already read (polling by ``created``
misses those). Without ``after`` the list, its pagination and its schema are authentik's.

The answer keeps authentik's shape, describing the one page it is::

    {"pagination": {"next": 0, "previous": 0, "count": 2, "current": 1, "total_pages": 1,
                    "start_index": 1, "end_index": 2},
     "results": [{...event..., "position": 41}, {...event..., "position": 44}],
     "autocomplete": {...},
     "next_position": 57,
     "has_more": false}

``next_position`` moves past every link looked at, matching or not (so a narrow filter does
not re-scan the same stretch); ``has_more`` is true when sealed events lie beyond it (ask
again at once); false means caught up (ask again after an interval). ``ordering`` and
``page`` do not apply to a cursor and are refused with a 400, as is a position that is not a
whole number.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.pagination import Pagination, single_value
from auditlog.listing import ORDERING_PARAM, ListingRefused, events_for_listing
from auditlog.positions import PositionError, events_after, head_position, parse_position

AFTER_PARAM = "after"
AFTER_DESCRIPTION = (
    "A position (a chain sequence, from 0): answer the events sealed after it, oldest first "
    "in commit order, with the same filters and search, each with its `position`, and "
    "`next_position` to ask from next. Polling with it never misses an event that committed "
    "late. Cannot be combined with `ordering` or `page` (400)."
)


class EventPagination(Pagination):
    """authentik's pagination, which also documents the cursor (``after``)."""

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        answer = super().get_paginated_response_schema(schema)
        answer["properties"] = {
            **answer["properties"],
            "next_position": {
                "type": "integer",
                "description": "Only with `after`: the position to ask from next. Each "
                "result then also has its own `position`.",
            },
            "has_more": {
                "type": "boolean",
                "description": "Only with `after`: true when sealed events lie beyond "
                "`next_position` (ask again at once), false when caught up.",
            },
        }
        return answer

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": AFTER_PARAM,
                "required": False,
                "in": "query",
                "description": AFTER_DESCRIPTION,
                "schema": {"type": "integer", "minimum": 0},
            },
        ]


def wants_cursor(request: Request) -> bool:
    return AFTER_PARAM in request.query_params


def cursor_response(view: Any, request: Request) -> Response:
    """The list's answer for ``?after=``: events after the position, in commit order."""
    try:
        position = parse_position(single_value(request, AFTER_PARAM), name=AFTER_PARAM)
    except PositionError as exc:
        raise ValidationError({AFTER_PARAM: [str(exc)]}) from None
    for refused in (ORDERING_PARAM, view.paginator.page_query_param):
        if refused in request.query_params:
            raise ValidationError(
                {
                    refused: [
                        f"Events after a position come in commit order, one answer at a time: "
                        f"{refused} cannot be combined with {AFTER_PARAM}; ask again from "
                        f"next_position instead."
                    ]
                }
            )
    limit = view.paginator.get_page_size(request)
    try:
        events = events_for_listing(user=request.user, params=request.query_params)
    except ListingRefused as exc:
        raise PermissionDenied(str(exc)) from None
    page = events_after(events, position, limit)
    serialized = view.get_serializer([item.event for item in page.items], many=True).data
    results = [
        {**data, "position": item.sequence}
        for data, item in zip(serialized, page.items, strict=True)
    ]
    count = len(results)
    return Response(
        {
            "pagination": {
                "next": 0,
                "previous": 0,
                "count": count,
                "current": 1,
                "total_pages": 1,
                "start_index": 1 if count else 0,
                "end_index": count,
            },
            "results": results,
            "autocomplete": view.get_autocomplete(),
            "next_position": page.next_position,
            "has_more": page.next_position < head_position(),
        }
    )
