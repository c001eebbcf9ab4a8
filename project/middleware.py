"""Response headers that harden the web admin in the browser."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware

# Everything the product serves comes from the product: scripts, styles, fonts, images and
# requests are locked to 'self'. Our pages load only their own scripts (no inline ones);
# inline styles stay allowed for the colour dots, the map library's positioning and the
# styles ReDoc and Swagger UI inject at run time.
DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Allowances a single page needs on top of the policy, and why.
PAGE_ALLOWANCES: dict[str, dict[str, str]] = {
    # ReDoc runs its search index in a web worker that it builds from its own bundle's code
    # as a blob: URL; without it the page works but logs a violation and searches nothing.
    "/api/v3/schema/redoc/": {"worker-src": "'self' blob:"},
}


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CONTENT_SECURITY_POLICY = policy(DIRECTIVES)
PAGE_POLICIES = {
    path: policy({**DIRECTIVES, **allowances}) for path, allowances in PAGE_ALLOWANCES.items()
}


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy to every response (pages, API answers, files: a JSON
    answer or an export opened in the browser runs nothing either), and the other headers
    that browsers act on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(
            "Content-Security-Policy", PAGE_POLICIES.get(request.path, CONTENT_SECURITY_POLICY)
        )
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's gzip, except for event streams: a compressor holds back what it is given until
    it has enough, and an event must reach the client as soon as it is written."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.get("Content-Type", "").startswith("text/event-stream"):
            return response
        return super().process_response(request, response)  # type: ignore[no-any-return]
