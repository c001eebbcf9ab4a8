"""Resolve the request's brand from its host, once per request and only when used."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from directory.brands import brand_for_host


class BrandMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.brand = SimpleLazyObject(lambda: brand_for_host(request.get_host()))  # type: ignore[attr-defined]
        return self.get_response(request)
