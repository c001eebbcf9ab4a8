"""Plumbing shared by the web admin's pages: permission checks, listing, pagination."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.views import redirect_to_login
from django.core.paginator import EmptyPage, Page, PageNotAnInteger
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.views import View

from auditlog.api.filters import OrderingError, resolve_ordering
from auditlog.paging import LargeTablePaginator

PAGE_SIZES = (25, 50, 100)


def refusal(
    request: HttpRequest, *permissions: str, any_of: bool = False, as_json: bool = False
) -> HttpResponse | None:
    """The one permission check of the web admin: ``None`` when the visitor may go on, else
    the answer to send instead. Anonymous visitors are sent to the login page; signed-in users
    without ``permissions`` (all of them, or one with ``any_of``) get a 403 that names what is
    missing: a page, or JSON for the endpoints that pages call from scripts. No permissions:
    being signed in is enough."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    held = (
        any(user.has_perm(permission) for permission in permissions)
        if any_of
        else user.has_perms(permissions)
    )
    if not permissions or held:
        return None
    if as_json:
        return JsonResponse(
            {"detail": f"You do not have the permission: {' or '.join(permissions)}."},
            status=403,
        )
    return forbidden(request, permissions)


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponseBase])


def page_permission(
    *permissions: str, any_of: bool = False, as_json: bool = False
) -> Callable[[ViewFunction], ViewFunction]:
    """A function view behind :func:`refusal` (the same check as :class:`PagePermissionMixin`)."""

    def decorate(view: ViewFunction) -> ViewFunction:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if (
                answer := refusal(request, *permissions, any_of=any_of, as_json=as_json)
            ) is not None:
                return answer
            return view(request, *args, **kwargs)

        checked.page_permissions = permissions  # type: ignore[attr-defined]
        return cast(ViewFunction, checked)

    return decorate


class PagePermissionMixin(View):
    """A class-based page behind :func:`refusal`, with ``permission_required``."""

    permission_required: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if (answer := refusal(request, *self.get_permission_required())) is not None:
            return answer
        return super().dispatch(request, *args, **kwargs)

    def get_permission_required(self) -> tuple[str, ...]:
        return tuple(self.permission_required)


def forbidden(request: HttpRequest, permissions: tuple[str, ...] = ()) -> HttpResponse:
    """The 403 page; use :func:`refusal` to decide when to send it."""
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
