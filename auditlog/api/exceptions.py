"""Every client error becomes a 4xx with a message; nothing reaches the user as a 500. A
database that cannot be reached is a 503 with a message, so clients know to retry."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from djangoql.exceptions import DjangoQLError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from auditlog.listing import ListingError
from auditlog.search import SearchError, search_error_body
from project.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, is_database_unavailable

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SearchError | DjangoQLError):
        return Response(search_error_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ListingError):  # a list's filter (groups' attributes=) refused a value
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if is_database_unavailable(exc):
        logger.error("Database unavailable: %s", exc, exc_info=exc)
        set_rollback()
        return Response(
            {"detail": DATABASE_UNAVAILABLE, "code": "database_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)
