"""Vacuum the events table after every 1 % of new rows (PostgreSQL's default waits for 20 %).

The table is insert-mostly, and its busiest reads (the volume chart, counts, deep pages) are
index-only scans over the newest rows, which only skip the table for pages the visibility
map marks all-visible; only a vacuum sets those marks. Elsewhere this does nothing.
"""

from django.db import migrations

TABLE = "auditlog_event"


def tune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} SET (autovacuum_vacuum_insert_scale_factor = 0.01, "
            "autovacuum_analyze_scale_factor = 0.02)"
        )


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} RESET (autovacuum_vacuum_insert_scale_factor, "
            "autovacuum_analyze_scale_factor)"
        )


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0007_event_latest_covers_action")]

    operations = [migrations.RunPython(tune, untune, elidable=False)]
