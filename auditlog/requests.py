"""What an event records about the HTTP request it came from."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest

from auditlog.sanitize import mask_string

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"


@lru_cache(maxsize=1)
def _trusted_networks(
    raw: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in raw)


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [::1]:port
        value = value[1 : value.index("]")]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. ``X-Forwarded-For`` counts only when it was added by a trusted
    proxy: the chain is walked from the right, skipping trusted proxies."""
    remote = _parse_ip(request.META.get("REMOTE_ADDR", "") or "")
    if remote is None:
        return None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded or not _is_trusted(remote):
        return str(remote)
    hops = [address for address in map(_parse_ip, forwarded.split(",")) if address is not None]
    for address in reversed(hops):
        if not _is_trusted(address):
            return str(address)
    return str(hops[0]) if hops else str(remote)


def request_id(request: HttpRequest) -> str | None:
    return getattr(request, "request_id", None)


def http_request_context(request: HttpRequest) -> dict[str, Any]:
    """``{path, method, args, user_agent}`` (+ ``request_id``). Secrets in ``args`` are masked
    by the redaction policy when the event is recorded (:func:`auditlog.services.record_event`)."""
    args = dict(parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True))
    context: dict[str, Any] = {
        "args": args,
        "path": mask_string(request.path),
        "method": request.method or "",
        "user_agent": mask_string(request.META.get("HTTP_USER_AGENT", "")[:1024]),
    }
    if rid := request_id(request):
        context["request_id"] = rid
    return context
