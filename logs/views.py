"""System > Logs: the recent lines of the web, worker and scheduler processes, filtered, and a
JSON endpoint the page polls in Follow mode. Lines come from :mod:`logs.files`, redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

from auditlog.web import page_permission
from logs.files import (
    LineDict,
    LogQuery,
    LogQueryError,
    level_number,
    parse_level_filter,
    parse_process,
    parse_since,
    read_lines,
)
from logs.setup import ROLES
from project.loglevels import LEVELS

PERMISSION = "logs.view_process_logs"
PAGE_LINES = 300
FIXED = ("timestamp", "level", "logger", "process", "event")


def query_from(params: Any) -> LogQuery:
    """The filters of a request's query string; :class:`LogQueryError` names a bad one."""
    request_id = params.get("request_id", "").strip()
    if len(request_id) > 128:
        raise LogQueryError("request_id: longer than 128 characters.")
    after = params.get("after", "").strip()
    if after:
        try:  # the timestamp of the last line shown, compared as the files write it
            datetime.fromisoformat(after.replace("Z", "+00:00"))
        except ValueError:
            raise LogQueryError(f"after: {after!r} is not the timestamp of a line.") from None
    return LogQuery(
        level=parse_level_filter(params["level"]) if params.get("level") else None,
        process=parse_process(params["process"]) if params.get("process") else None,
        logger=params.get("logger", "").strip() or None,
        request_id=request_id or None,
        since=parse_since(params["since"]) if params.get("since") else None,
        after=after or None,
    )


def _link(key: str, value: Any) -> str | None:
    """Where a field leads: an event's page, or the lines of the same request or task."""
    if key == "event_pk":
        try:
            return reverse("auditlog:event-detail", args=[value])
        except NoReverseMatch:
            return None
    if key in ("request_id", "task_id") and isinstance(value, str):
        return f"{reverse('logs:log-list')}?{urlencode({'request_id': value})}"
    return None


def as_row(line: LineDict) -> dict[str, Any]:
    """A line as the page shows it: the schema's fields, then the rest as ``key=value``."""
    return {
        **{key: line.get(key, "") for key in FIXED},
        "severity": "error" if level_number(line) >= 40 else str(line.get("level", "")),
        "fields": {key: value for key, value in line.items() if key not in FIXED},
        "links": {key: link for key, value in line.items() if (link := _link(key, value))},
    }


@page_permission(PERMISSION)
def log_list(request: HttpRequest) -> HttpResponse:
    error = None
    rows: list[dict[str, Any]] = []
    try:
        rows = [as_row(line) for line in read_lines(query_from(request.GET), limit=PAGE_LINES)]
    except LogQueryError as exc:
        error = str(exc)
    context = {
        "rows": rows,
        "error": error,
        "levels": list(LEVELS),
        "roles": ROLES,
        "log_dir": settings.LOG_DIR,
        "files_on": settings.LOG_FILES,
        "params": request.GET,
    }
    return render(request, "logs/log_list.html", context, status=400 if error else 200)


@page_permission(PERMISSION, as_json=True)
def log_lines(request: HttpRequest) -> JsonResponse:
    """``{"lines": [...], "cursor": ...}``: the lines newer than ``after`` (Follow mode)."""
    try:
        query = query_from(request.GET)
    except LogQueryError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    lines = [as_row(line) for line in read_lines(query, limit=PAGE_LINES)]
    cursor = lines[-1]["timestamp"] if lines else query.after
    return JsonResponse({"lines": lines, "cursor": cursor})
