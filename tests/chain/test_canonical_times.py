"""The canonical times of the chain: written faster, the same bytes as before (every hash
depends on them)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from auditlog.chain.canonical import iso_utc


def reference(value: datetime) -> str:
    """How the chain wrote times before: its hashes are of this text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_iso_utc_writes_the_reference_text_for_any_time_and_zone() -> None:
    rnd = random.Random(14)
    zones = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    for _ in range(20_000):
        value = datetime(
            rnd.randint(1, 9998),
            rnd.randint(1, 12),
            rnd.randint(1, 28),
            rnd.randint(0, 23),
            rnd.randint(0, 59),
            rnd.randint(0, 59),
            rnd.choice([0, rnd.randint(0, 999_999)]),
            tzinfo=UTC,
        ).astimezone(rnd.choice(zones))
        assert iso_utc(value) == reference(value), value
    assert iso_utc(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01T12:00:00.000000Z"
    early = datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert iso_utc(early) == reference(early)
