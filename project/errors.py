"""What a request gets when it fails outside a view's own error handling: JSON under ``/api/``
(clients parse it), pages elsewhere, and a 503 that says so when the database cannot be
reached (it is restarting, or the connection broke), instead of a generic 500."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

API_PREFIX = "/api/"
DATABASE_UNAVAILABLE = (
    "The database is unavailable at the moment (it may be restarting). Try again in a few seconds."
)
RETRY_AFTER_SECONDS = 5


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means the database could not be reached or the connection broke."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_unavailable_json() -> JsonResponse:
    return JsonResponse(
        {"detail": DATABASE_UNAVAILABLE, "code": "database_unavailable"},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: no route matched (or a view raised Http404)."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500, called while the uncaught exception is being handled."""
    unavailable = is_database_unavailable(sys.exc_info()[1])
    if request.path.startswith(API_PREFIX):
        if unavailable:
            return database_unavailable_json()
        return JsonResponse({"detail": "A server error occurred."}, status=500)
    if unavailable:
        # A page of its own: base.html needs the database (brand, navigation).
        page = render_to_string("503.html", {"message": DATABASE_UNAVAILABLE})
        return HttpResponse(page, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return defaults.server_error(request)
