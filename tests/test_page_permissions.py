"""Every page of the web admin checks its permission one way: auditlog.web.refusal, reached
through PagePermissionMixin (class-based pages) or @page_permission (function pages)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from auditlog.web import PagePermissionMixin
from tests.conftest import REPO

# Pages that anybody may open, and the one that hands Bearer requests to the API's own checks
# (exports/views.download: the page half is @page_permission, see tests/exports/test_download),
# and the site's icon (project/favicon.py: a static file, shown on the login page too).
OPEN = {"login/", "logout/", "exports/<uuid:pk>/download/", "favicon.ico"}
VIEW_MODULES = (
    "auditlog/views.py",
    "directory/views.py",
    "exports/views.py",
    "notifications/views.py",
    "searches/views.py",
    "sources/views.py",
)


def _pages(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _pages(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if not route.startswith("api/"):  # the API: DRF's permission classes
                yield route, pattern.callback


def _checked(view: Callable[..., Any]) -> bool:
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return issubclass(view_class, PagePermissionMixin)
    return hasattr(view, "page_permissions")


def test_every_page_goes_through_the_one_permission_check() -> None:
    pages = dict(_pages())
    assert len(pages) > 20  # the walk found the web admin
    unchecked = sorted(
        route for route, view in pages.items() if route not in OPEN and not _checked(view)
    )
    assert unchecked == []


def test_no_view_module_checks_permissions_another_way() -> None:
    """Django's login_required/permission_required/AccessMixin and hand-written helpers were the
    other ways; a page check is refusal(), or a decorator or mixin built on it."""
    other_ways = {"login_required", "permission_required", "AccessMixin", "user_passes_test"}
    found = []
    for module in VIEW_MODULES:
        tree = ast.parse((REPO / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                name = node.id
            elif isinstance(node, ast.alias):
                name = node.name
            else:
                name = None
            if name in other_ways:
                found.append(f"{module}:{getattr(node, 'lineno', '?')} {name}")
            if isinstance(node, ast.FunctionDef) and node.name == "_require":
                found.append(f"{module}:{node.lineno} _require")
    assert found == []


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["/events/map/", "/events/rules/new/", "/system/sources/new/"])
def test_the_one_check_sends_anonymous_visitors_to_log_in(route: str) -> None:
    response = Client().get(route)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={route}")


@pytest.mark.django_db
def test_the_one_check_names_what_is_missing(nobody: Any) -> None:
    client = Client()
    client.force_login(nobody)
    page = client.get("/events/rules/new/")
    assert page.status_code == 403
    assert "notifications.add_notificationrule" in page.content.decode()
    script = client.get("/events/map/")
    assert script.status_code == 403
    assert script.json() == {"detail": "You do not have the permission: auditlog.view_event."}
