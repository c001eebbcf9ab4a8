"""Make the current request known to capture, and record unhandled exceptions."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from auditlog.context import request_context
from auditlog.models import EventAction
from auditlog.services import record_event

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# Exceptions that are a client's doing or Django's normal control flow, not a system fault.
IGNORED_EXCEPTIONS: tuple[type[BaseException], ...] = (Http404,)


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex  # type: ignore[attr-defined]
        with request_context(request):
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if settings.DEBUG or isinstance(exception, IGNORED_EXCEPTIONS):
            return
        action = (
            EventAction.SUSPICIOUS_REQUEST
            if isinstance(exception, SuspiciousOperation)
            else EventAction.SYSTEM_EXCEPTION
        )
        try:
            record_event(
                action=action,
                app="auditlog.middleware",
                context={"message": str(exception)},
                exception=exception,
                request=request,
            )
        except Exception:  # the original exception matters more than this one
            logger.exception("Could not record %s", action)
