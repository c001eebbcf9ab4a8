"""What the migrations set up on PostgreSQL beyond tables: storage options and indexes that the
fast paths depend on."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's storage options"),
]


def test_the_events_table_is_vacuumed_after_one_percent_of_new_rows() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'auditlog_event'")
        (options,) = cursor.fetchone()
    assert "autovacuum_vacuum_insert_scale_factor=0.01" in options
    assert "autovacuum_analyze_scale_factor=0.02" in options


def test_the_newest_first_index_carries_the_action() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'auditlog_ev_latest_idx'")
        (definition,) = cursor.fetchone()
    assert "INCLUDE (action)" in definition
