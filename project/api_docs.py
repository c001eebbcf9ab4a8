"""The API's browsable documentation (Swagger UI and ReDoc) served entirely from this site,
under the same Content-Security-Policy as every other page (project/middleware.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# ReDoc's sidebar shows a "by Redocly" logo that its bundle fetches from Redocly's CDN, with no
# option to turn it off. The served copy gets an empty image in its place, so the page loads
# nothing from outside (the link itself stays).
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


class MissingBundleError(RuntimeError):
    """The installed drf-spectacular-sidecar no longer has the file or the text we replace."""


@lru_cache(maxsize=1)
def redoc_bundle() -> bytes:
    """The sidecar's ReDoc bundle with the CDN logo replaced; raises MissingBundleError if
    the bundle or the logo's address changed (so an upgrade cannot quietly bring it back)."""
    found = finders.find(REDOC_BUNDLE)
    if not found:
        raise MissingBundleError(f"{REDOC_BUNDLE} is not installed (drf-spectacular-sidecar)")
    source = Path(str(found)).read_text(encoding="utf-8")
    if REDOC_LOGO not in source:
        raise MissingBundleError(f"{REDOC_BUNDLE} no longer loads {REDOC_LOGO}: check it again")
    return source.replace(REDOC_LOGO, EMPTY_IMAGE).encode()


@require_GET
def redoc_script(request: HttpRequest) -> HttpResponse:
    """ReDoc's standalone bundle, as served by the sidecar but for the logo (a public
    library, like the other static files)."""
    response = HttpResponse(redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


class RedocView(SpectacularRedocView):
    """ReDoc on our own page: no inline script, no web fonts from a CDN, our bundle."""

    template_name = "api/redoc.html"

    def _redoc_standalone(self) -> str:  # type: ignore[override]
        return reverse("schema-redoc-script")
