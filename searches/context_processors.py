"""The saved searches the signed-in user pinned, for the navigation of every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from searches.models import SavedSearch


def pinned(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("auditlog.view_event"):
        return {}
    return {"pinned_searches": list(SavedSearch.objects.pinned_by(user).only("pk", "name"))}
