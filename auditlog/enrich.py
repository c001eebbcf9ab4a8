"""GeoIP and ASN enrichment of event contexts.

Each database is opened lazily from the path in settings (``GEOIP_CITY_DB``, ``GEOIP_ASN_DB``;
empty disables it) and re-opened when the file on disk changes, so a database update needs no
restart. Lookup failures (private, reserved or unknown addresses) simply add nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from functools import lru_cache
from threading import Lock
from typing import Any, TypedDict

import geoip2.database
import geoip2.errors
import geoip2.models
from django.conf import settings

logger = logging.getLogger(__name__)

# How often the file's mtime is checked; a stat per lookup would be wasted work.
_STAT_INTERVAL_SECONDS = 1.0


class GeoContext(TypedDict):
    continent: str | None
    country: str | None
    lat: float | None
    long: float | None
    city: str


class ASNContext(TypedDict):
    asn: int | None
    as_org: str | None
    network: str | None


def city_to_dict(city: geoip2.models.City) -> GeoContext:
    return {
        "continent": city.continent.code,
        "country": city.country.iso_code,
        "lat": city.location.latitude,
        "long": city.location.longitude,
        "city": city.city.name or "",
    }


def asn_to_dict(asn: geoip2.models.ASN) -> ASNContext:
    return {
        "asn": asn.autonomous_system_number,
        "as_org": asn.autonomous_system_organization,
        "network": str(asn.network) if asn.network else None,
    }


class MMDB:
    """A MaxMind database that follows its setting and its file."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._lock = Lock()
        self._reader: geoip2.database.Reader | None = None
        self._path = ""
        self._mtime = 0.0
        self._checked_at = 0.0

    @property
    def path(self) -> str:
        return str(getattr(settings, self.setting, "") or "")

    def reader(self) -> geoip2.database.Reader | None:
        path = self.path
        now = time.monotonic()
        if path == self._path and now - self._checked_at < _STAT_INTERVAL_SECONDS:
            return self._reader
        with self._lock:
            self._checked_at = now
            if not path:
                self._close()
                self._path = ""
                return None
            try:
                mtime = os.stat(path).st_mtime
            except OSError as exc:
                if path != self._path:
                    logger.warning("%s: cannot open %s: %s", self.setting, path, exc)
                self._close()
                self._path = path
                return None
            if path != self._path or mtime != self._mtime or self._reader is None:
                self._open(path, mtime)
            return self._reader

    def _open(self, path: str, mtime: float) -> None:
        self._close()
        self._path, self._mtime = path, mtime
        try:
            self._reader = geoip2.database.Reader(path)
        except (OSError, ValueError) as exc:
            logger.warning("%s: cannot read %s: %s", self.setting, path, exc)
            self._reader = None
        else:
            logger.info("%s: opened %s", self.setting, path)
        _lookup_city.cache_clear()
        _lookup_asn.cache_clear()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def configured(self) -> bool:
        return self.reader() is not None


city_db = MMDB("GEOIP_CITY_DB")
asn_db = MMDB("GEOIP_ASN_DB")


def _public_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if not address.is_global:
        return None
    return str(address)


@lru_cache(maxsize=4096)
def _lookup_city(ip: str) -> GeoContext | None:
    reader = city_db.reader()
    if reader is None:
        return None
    try:
        return city_to_dict(reader.city(ip))
    except (geoip2.errors.AddressNotFoundError, ValueError, TypeError):
        return None


@lru_cache(maxsize=4096)
def _lookup_asn(ip: str) -> ASNContext | None:
    reader = asn_db.reader()
    if reader is None:
        return None
    try:
        return asn_to_dict(reader.asn(ip))
    except (geoip2.errors.AddressNotFoundError, ValueError, TypeError):
        return None


def geo_for_ip(ip: str | None) -> GeoContext | None:
    """``{continent, country, lat, long, city}`` for a public address the database knows."""
    address = _public_ip(ip)
    if address is None or city_db.reader() is None:
        return None
    result = _lookup_city(address)
    return dict(result) if result else None  # type: ignore[return-value]


def asn_for_ip(ip: str | None) -> ASNContext | None:
    """``{asn, as_org, network}`` for a public address the database knows."""
    address = _public_ip(ip)
    if address is None or asn_db.reader() is None:
        return None
    result = _lookup_asn(address)
    return dict(result) if result else None  # type: ignore[return-value]


def enrich_context(context: dict[str, Any], ip: str | None) -> dict[str, Any]:
    """Add ``geo`` and ``asn`` for ``ip`` to ``context`` (in place) and return it."""
    if geo := geo_for_ip(ip):
        context["geo"] = geo
    if asn := asn_for_ip(ip):
        context["asn"] = asn
    return context
