"""The API's JSON parser: bounded size and depth, and a 4xx for anything it cannot read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

from auditlog.sanitize import MAX_DEPTH


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` levels. Recursive, but never deeper than
    ``limit`` calls, so a hostile document cannot overflow the stack; only containers are
    visited, so it is cheap on wide documents."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return limit < 1
    return limit < 1 or _deeper(value, limit - 1)


def _deeper(node: Any, remaining: int) -> bool:
    """Whether a child container of ``node`` nests more than ``remaining`` further levels."""
    for child in node.values() if type(node) is dict else node:
        kind = type(child)  # json.loads makes exactly these two containers
        if (kind is dict or kind is list) and (remaining < 1 or _deeper(child, remaining - 1)):
            return True
    return False


class JSONParser(parsers.JSONParser):
    """Refuses bodies over ``API_MAX_BODY_BYTES`` (413) and documents nested deeper than the
    redaction policy keeps (400), instead of failing or storing them cut short."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = int(settings.API_MAX_BODY_BYTES)
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and str(declared).isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if nested_deeper_than(data, MAX_DEPTH):
            raise ParseError(
                f"JSON parse error - the document is nested deeper than {MAX_DEPTH} levels."
            )
        return data
