"""Plumbing shared by the web admin's pages: permission checks, listing, pagination."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.core.paginator import EmptyPage, Page, PageNotAnInteger
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from auditlog.api.filters import OrderingError, resolve_ordering
from auditlog.paging import LargeTablePaginator

PAGE_SIZES = (25, 50, 100)


class PagePermissionMixin(AccessMixin):
    """Anonymous visitors go to the login page; signed-in users without the permissions get a
    403 page that says what is missing."""

    permission_required: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not request.user.has_perms(self.get_permission_required()):
            return forbidden(request, self.get_permission_required())
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def get_permission_required(self) -> tuple[str, ...]:
        return tuple(self.permission_required)


def forbidden(request: HttpRequest, permissions: tuple[str, ...] = ()) -> HttpResponse:
    return render(request, "403.html", {"missing": permissions}, status=403)


@dataclass
class Listing:
    """One page of a sortable, searchable listing, and how to link to its neighbours."""

    page: Page[Any]
    ordering: str
    page_size: int
    error: str | None = None

    @property
    def objects(self) -> list[Any]:
        return list(self.page.object_list)


def page_size_from(request: HttpRequest, default: int = 25) -> int:
    try:
        size = int(request.GET.get("page_size", default))
    except ValueError:
        return default
    return size if size in PAGE_SIZES else default


def ordered(
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    allowed: set[str],
    aliases: dict[str, str] | None = None,
    default: list[str],
) -> tuple[QuerySet[Any], str | None]:
    """Order by ``?ordering=`` like the API does; an unknown key is reported, not ignored."""
    try:
        terms = resolve_ordering(
            request.GET.get("ordering"),
            allowed=allowed,
            aliases=aliases or {},
            default=default,
            pk=queryset.model._meta.pk.name,
        )
    except OrderingError as exc:
        terms = resolve_ordering(
            None,
            allowed=allowed,
            aliases=aliases or {},
            default=default,
            pk=queryset.model._meta.pk.name,
        )
        return queryset.order_by(*terms), str(exc)
    return queryset.order_by(*terms), None


def query_of(request: HttpRequest, keys: Iterable[str]) -> str:
    """The request's query string with only the parameters named in ``keys`` (for the links
    of charts, maps and exports that must show the same rows as the page)."""
    kept = set(keys)
    params = request.GET.copy()
    for key in list(params):
        if key not in kept:
            del params[key]
    return params.urlencode()


def paginate(
    request: HttpRequest, queryset: QuerySet[Any] | list[Any], *, page_size: int
) -> Page[Any]:
    """The requested page (counted cheaply on big tables); a page number that is not a page
    shows the first page instead of failing."""
    paginator = LargeTablePaginator(queryset, page_size)
    try:
        return paginator.page(request.GET.get("page") or 1)
    except (PageNotAnInteger, EmptyPage):
        return paginator.page(1)
