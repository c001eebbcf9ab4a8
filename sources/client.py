"""A small client for authentik's events API (``GET /api/v3/events/events/``): one page at a
time, with every failure turned into a :class:`SourceError` that says what the other side
answered, in its own words."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from auditlog.sanitize import mask_string

ERROR_BODY_CHARS = 300


class SourceError(Exception):
    """The source could not be read; the message is shown on the status page as is."""


@dataclass(frozen=True)
class Page:
    results: list[dict[str, Any]]
    has_next: bool
    count: int | None


def search_since(moment: datetime) -> str:
    """A QL search for events created at or after ``moment`` (to the second, rounded down,
    in UTC: the format authentik's and our search both read)."""
    return f'created >= "{moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")}"'


class AuthentikClient:
    def __init__(self, base_url: str, token: str, *, verify_tls: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = mask_string(self.base_url)  # a password in the URL is never shown
        self.token = token
        self.context = None if verify_tls else ssl._create_unverified_context()  # noqa: S323

    def events_page(self, *, since: datetime | None, page: int, page_size: int) -> Page:
        """One page of events in ``created`` order, from ``since`` on (``None``: all)."""
        params: dict[str, Any] = {"ordering": "created", "page_size": page_size, "page": page}
        if since is not None:
            params["search"] = search_since(since)
        body = self._get("/api/v3/events/events/", params)
        results = body.get("results") if isinstance(body, dict) else None
        pagination = body.get("pagination") if isinstance(body, dict) else None
        if not isinstance(results, list) or not isinstance(pagination, dict):
            raise SourceError(
                "The answer is not an authentik events page (no pagination/results); "
                "is the URL an authentik instance?"
            )
        count = pagination.get("count")
        return Page(
            results=[item for item in results if isinstance(item, dict)],
            has_next=bool(pagination.get("next")),
            count=count if isinstance(count, int) else None,
        )

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked by the form)
            url,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=settings.SOURCES_HTTP_TIMEOUT, context=self.context
            ) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise SourceError(_http_error(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"Could not reach {self.shown_url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise SourceError(f"{self.shown_url} answered something that is not JSON.") from None


def _http_error(exc: urllib.error.HTTPError) -> str:
    """``authentik answered 403 Forbidden: <its detail>``."""
    text = ""
    try:
        raw = exc.read(64_000)
        body = json.loads(raw)
        if isinstance(body, dict):
            detail = body.get("detail", body)
            text = detail if isinstance(detail, str) else json.dumps(detail)[:ERROR_BODY_CHARS]
        else:
            text = json.dumps(body)[:ERROR_BODY_CHARS]
    except (ValueError, OSError):
        text = ""
    message = f"authentik answered {exc.code} {exc.reason}"
    return f"{message}: {text}" if text else message
