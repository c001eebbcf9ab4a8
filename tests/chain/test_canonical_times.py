"""The canonical times of the chain: written faster, the same bytes as before (every hash
depends on them)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from auditlog.chain.canonical import iso_utc
from tests.chain.conftest import random_times


def reference(value: datetime) -> str:
    """How the chain wrote times before: its hashes are of this text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_iso_utc_writes_the_reference_text_for_any_time_and_zone() -> None:
    for value in random_times(random.Random(14), 20_000, last_year=9998):
        assert iso_utc(value) == reference(value), value
    assert iso_utc(datetime(2024, 5, 1, 12, tzinfo=UTC)) == "2024-05-01T12:00:00.000000Z"
    early = datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert iso_utc(early) == reference(early)
