"""PostgreSQL: the events table becomes partitioned by month of ``created``
(:mod:`auditlog.partitions`). A new installation (or one with few events) is converted here,
in the migration's transaction; a larger one keeps its plain table until the operator runs
the resumable ``manage.py partition_events`` (every part of the product works with either).
SQLite, and ``AUDITLOG_PARTITION_EVENTS=false``, keep the plain table. Model state does not
change: Django keeps ``event_uuid`` as the pk; the database's key is ``(event_uuid, created)``.
"""

from django.db import migrations

# Larger tables are left to ``partition_events`` (a migration should not copy for an hour).
CONVERT_IN_MIGRATION_UP_TO = 100_000


def partition(apps, schema_editor):
    from auditlog import partitioning, partitions

    if schema_editor.connection.vendor != "postgresql" or not partitions.enabled():
        return
    with schema_editor.connection.cursor() as cursor:
        if partitioning.state(cursor) != "plain":
            return
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {partitions.EVENTS}"  # noqa: S608
            f" LIMIT {CONVERT_IN_MIGRATION_UP_TO + 1}) AS e"
        )
        if cursor.fetchone()[0] > CONVERT_IN_MIGRATION_UP_TO:
            print(  # noqa: T201 - the operator reads it in the migrate output
                "\n  The events table is large: run `manage.py partition_events` to partition it."
            )
            return
    partitioning.convert()
    with schema_editor.connection.cursor() as cursor:
        partitioning.drop_old(cursor)


def unpartition(apps, schema_editor):
    from auditlog import partitioning, partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if partitions.is_partitioned(cursor):
            partitioning.unpartition(cursor)


class Migration(migrations.Migration):

    dependencies = [
        ("auditlog", "0011_event_rollups"),
        ("notifications", "0002_partition_event_reference"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
