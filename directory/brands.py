"""Brand lookups with a small per-process cache: brands change rarely, requests are many."""

from __future__ import annotations

import time
from threading import Lock

from directory.models import Brand

_TTL_SECONDS = 60.0
_lock = Lock()
_cache: dict[str, tuple[float, Brand | None]] = {}


def brand_for_host(host: str) -> Brand | None:
    key = host.split(":")[0].lower()
    now = time.monotonic()
    cached = _cache.get(key)
    if cached and now - cached[0] < _TTL_SECONDS:
        return cached[1]
    brand = Brand.objects.for_host(key)
    with _lock:
        _cache[key] = (now, brand)
    return brand


def default_brand() -> Brand | None:
    return brand_for_host("")


def forget_brands() -> None:
    """Drop the cache; called whenever a brand is saved or deleted."""
    with _lock:
        _cache.clear()
