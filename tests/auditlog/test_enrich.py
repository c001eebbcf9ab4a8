"""GeoIP and ASN enrichment with MaxMind's test databases (known answers)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from auditlog import enrich
from auditlog.enrich import asn_for_ip, enrich_context, geo_for_ip


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (
            "2.125.160.216",
            {"city": "Boxford", "continent": "EU", "country": "GB", "lat": 51.75, "long": -1.25},
        ),
        (
            "81.2.69.142",
            {"city": "London", "continent": "EU", "country": "GB", "lat": 51.5142, "long": -0.0931},
        ),
        (
            "67.43.156.0",
            {"city": "", "continent": "AS", "country": "BT", "lat": 27.5, "long": 90.5},
        ),
        (
            "89.160.20.112",
            {
                "city": "Linköping",
                "continent": "EU",
                "country": "SE",
                "lat": 58.4167,
                "long": 15.6167,
            },
        ),
        (
            "216.160.83.56",
            {
                "city": "Milton",
                "continent": "NA",
                "country": "US",
                "lat": 47.2513,
                "long": -122.3149,
            },
        ),
    ],
)
def test_known_addresses_get_their_city(geoip_dbs, ip: str, expected: dict) -> None:
    assert geo_for_ip(ip) == expected


def test_known_addresses_get_their_network(geoip_dbs) -> None:
    assert asn_for_ip("1.0.0.1") == {"asn": 15169, "as_org": "Google Inc.", "network": "1.0.0.0/24"}
    assert asn_for_ip("1.128.0.0") == {
        "asn": 1221,
        "as_org": "Telstra Pty Ltd",
        "network": "1.128.0.0/11",
    }


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "192.168.1.1", "255.255.255.255", "127.0.0.1", "not-an-ip", "", None]
)
def test_private_reserved_and_invalid_addresses_get_nothing(geoip_dbs, ip) -> None:
    assert geo_for_ip(ip) is None
    assert asn_for_ip(ip) is None
    assert enrich_context({}, ip) == {}


def test_enrich_context_adds_both(geoip_dbs) -> None:
    context = enrich_context({"x": 1}, "1.0.0.1")
    assert context["asn"]["asn"] == 15169
    assert "x" in context


def test_an_empty_path_disables_the_lookup(geoip_dbs, settings) -> None:
    settings.GEOIP_CITY_DB = ""
    assert geo_for_ip("2.125.160.216") is None
    assert asn_for_ip("1.0.0.1") is not None


def test_a_missing_file_disables_the_lookup_without_failing(settings) -> None:
    settings.GEOIP_CITY_DB = "/nonexistent/GeoLite2-City.mmdb"
    assert geo_for_ip("2.125.160.216") is None


def test_the_bundled_world_database_is_the_default(settings) -> None:
    from django.conf import settings as live

    assert live.GEOIP_CITY_DB.endswith("GeoLite2-City.mmdb")
    assert Path(live.GEOIP_CITY_DB).exists()
    # A real address resolves with no download: Google's public resolver is in the US.
    assert geo_for_ip("8.8.8.8")["country"] == "US"


def test_the_database_is_reopened_when_the_file_changes(
    geoip_dbs, settings, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(enrich, "_STAT_INTERVAL_SECONDS", 0.0)
    live = tmp_path / "city.mmdb"
    shutil.copy(geoip_dbs / "GeoIP2-City-Test.mmdb", live)
    settings.GEOIP_CITY_DB = str(live)
    assert geo_for_ip("2.125.160.216")["city"] == "Boxford"
    # Replace the file with a database that knows nothing of this address (the ASN one).
    shutil.copy(geoip_dbs / "GeoLite2-ASN-Test.mmdb", live)
    stat = live.stat()
    os.utime(live, (stat.st_atime, stat.st_mtime + 10))
    assert geo_for_ip("2.125.160.216") is None
    shutil.copy(geoip_dbs / "GeoLite2-City-Test.mmdb", live)
    os.utime(live, (stat.st_atime, stat.st_mtime + 20))
    assert geo_for_ip("2.125.160.216")["country"] == "GB"
