"""The chain's queue records the database's clock when each event is inserted (``queued_at``),
and the sealer copies it into the link, under the link's hash: an event whose ``created``
lies further before that clock than ``AUDIT_CHAIN_BACKDATE_BOUND`` is a backdated insert,
which the sealer logs and verification reports.

The trigger of ``0004_event_chain`` is replaced by one that also stores the clock (the
statement's start on PostgreSQL, ``'now'`` of the statement on SQLite). Both new columns are
nullable: queue entries and links from before this migration have no clock and are not
checked. Adding a nullable column is an ``ALTER TABLE ... ADD COLUMN`` on SQLite, no table
rebuild. A later migration that rebuilds the events table on SQLite drops the trigger with
the old table and must create it again with :func:`create_trigger` of this migration (the
newest version of the trigger).
"""

from django.db import migrations, models

EVENTS = '"auditlog_event"'
PENDING = '"auditlog_eventchainpending"'
TRIGGER = "auditlog_event_chain_queue"

POSTGRESQL_FUNCTION = """
    CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {pending} (event_uuid, created{column})
        SELECT event_uuid, created{value} FROM inserted_events
        ON CONFLICT (event_uuid) DO NOTHING;
        RETURN NULL;
    END
    $$
"""
POSTGRESQL_TRIGGER = f"""
    CREATE TRIGGER {TRIGGER} AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS inserted_events
    FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()
"""
SQLITE_TRIGGER = """
    CREATE TRIGGER {trigger} AFTER INSERT ON {events}
    BEGIN
        INSERT OR IGNORE INTO {pending} (event_uuid, created{column})
        VALUES (NEW.event_uuid, NEW.created{value});
    END
"""
# SQLite stores Django's datetimes as UTC text; %f is seconds with milliseconds.
SQLITE_NOW = ", strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _statements(vendor, with_clock):
    column = ", queued_at" if with_clock else ""
    if vendor == "postgresql":
        value = ", statement_timestamp()" if with_clock else ""
        function = POSTGRESQL_FUNCTION.format(
            trigger=TRIGGER, pending=PENDING, column=column, value=value
        )
        # The function is replaced in place; the trigger, which names it, stays.
        return [function]
    if vendor == "sqlite":
        value = SQLITE_NOW if with_clock else ""
        return [
            f"DROP TRIGGER IF EXISTS {TRIGGER}",
            SQLITE_TRIGGER.format(
                trigger=TRIGGER, events=EVENTS, pending=PENDING, column=column, value=value
            ),
        ]
    return []


def create_trigger(apps, schema_editor):
    """Install the newest trigger (with the clock); on PostgreSQL also the trigger itself
    when a rebuilt events table lost it."""
    vendor = schema_editor.connection.vendor
    for statement in _statements(vendor, with_clock=True):
        schema_editor.execute(statement)
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {EVENTS}")
        schema_editor.execute(POSTGRESQL_TRIGGER)


def restore_trigger(apps, schema_editor):
    for statement in _statements(schema_editor.connection.vendor, with_clock=False):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('auditlog', '0007_event_latest_covers_action'),
    ]

    operations = [
        migrations.AddField(
            model_name='eventchainpending',
            name='queued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='eventchainlink',
            name='queued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(create_trigger, restore_trigger, elidable=False),
    ]
