"""``/favicon.ico``: the product's own icon, for browsers and tools that ask for it at the root.

Pages also name the SVG icon in their ``<head>``; both are files of the app's static directory,
served from this origin (the Content-Security-Policy's ``img-src 'self'`` covers them).
"""

from __future__ import annotations

from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

ICON = Path(__file__).resolve().parent.parent / "auditlog" / "static" / "auditlog" / "favicon.ico"
ONE_DAY = 24 * 60 * 60


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """The icon, to anyone (it is public: signed-out pages show it too), cached for a day."""
    return HttpResponse(
        ICON.read_bytes(),
        content_type="image/vnd.microsoft.icon",
        headers={"Cache-Control": f"public, max-age={ONE_DAY}"},
    )
