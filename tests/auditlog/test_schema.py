"""What the migrations set up on PostgreSQL beyond tables: indexes the fast paths depend on."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index definitions"),
]


def test_the_newest_first_index_carries_the_action() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'auditlog_ev_latest_idx'")
        (definition,) = cursor.fetchone()
    assert "INCLUDE (action)" in definition
