"""The chain's links learn their event's ``created`` (``event_created``, filled here from the
events; a link whose event is gone takes its ``queued_at``), and on PostgreSQL the link table
becomes partitioned by its month like the events (:mod:`auditlog.partitions`), so retention
drops a month's links with its events. A new installation (or one with few links) is
converted here; a larger one keeps its plain link table until ``manage.py partition_events``.
SQLite, and ``AUDITLOG_PARTITION_EVENTS=false``, keep the plain table. Model state: Django
keeps ``sequence`` as the pk; the database's keys become ``(sequence, event_created)`` and
``(event_uuid, event_created)``.
"""

from django.db import migrations, models

# Larger tables are left to ``partition_events`` (a migration should not copy for an hour).
CONVERT_IN_MIGRATION_UP_TO = 100_000


def fill_event_created(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE auditlog_eventchainlink AS l SET event_created = e.created"
                " FROM auditlog_event AS e WHERE e.event_uuid = l.event_uuid"
            )
        else:
            cursor.execute(
                "UPDATE auditlog_eventchainlink SET event_created = (SELECT e.created"
                " FROM auditlog_event AS e"
                " WHERE e.event_uuid = auditlog_eventchainlink.event_uuid)"
            )
        cursor.execute(
            "UPDATE auditlog_eventchainlink SET event_created = COALESCE(queued_at, %s)"
            " WHERE event_created IS NULL",
            ["1970-01-01 00:00:00+00:00"],
        )


def partition(apps, schema_editor):
    from auditlog import partitioning, partitions

    if schema_editor.connection.vendor != "postgresql" or not partitions.enabled():
        return
    links = partitioning.LINKS
    with schema_editor.connection.cursor() as cursor:
        state = partitioning.state(cursor, links)
        if state == "copying":  # a conversion the command started: it resumes it
            print(  # noqa: T201 - the operator reads it in the migrate output
                "\n  The chain's link table is being partitioned: run `manage.py"
                " partition_events` to finish."
            )
        if state != "plain":
            return
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {links.name}"  # noqa: S608
            f" LIMIT {CONVERT_IN_MIGRATION_UP_TO + 1}) AS l"
        )
        if cursor.fetchone()[0] > CONVERT_IN_MIGRATION_UP_TO:
            print(  # noqa: T201 - the operator reads it in the migrate output
                "\n  The chain's link table is large: run `manage.py partition_events` to"
                " partition it."
            )
            return
    partitioning.convert(conversion=links)
    with schema_editor.connection.cursor() as cursor:
        partitioning.drop_old(cursor, links)


def unpartition(apps, schema_editor):
    from auditlog import partitioning, partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if partitions.is_partitioned(cursor, partitions.LINKS):
            partitioning.unpartition(cursor, partitioning.LINKS)


class Migration(migrations.Migration):

    dependencies = [
        ("auditlog", "0013_event_volume"),
    ]

    operations = [
        migrations.AddField(
            model_name="eventchainlink",
            name="event_created",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_event_created, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="eventchainlink",
            name="event_created",
            field=models.DateTimeField(),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
