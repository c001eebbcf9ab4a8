"""Tamper evidence: the hash chain's links, the queue of events waiting to be sealed, the signed
checkpoint and prune records, and the trigger that queues every inserted event.

The events table stays insert-only: an event's place in the chain is a row of its own
(``EventChainLink``), written by the sealer after the event commits. What to seal is queued by
a trigger, so every way of writing events (ORM, ``bulk_create``, ``COPY``, raw SQL) is queued
in the inserting statement, without a round trip from the application:

* PostgreSQL: one ``INSERT ... SELECT`` per statement from its transition table (cheap for a
  ``COPY`` of a million rows);
* SQLite: a row-level trigger;
* other databases: no trigger (``auditlog.chain`` then finds unsealed events by an anti-join).

Existing events are queued here and sealed in ``(created, event_uuid)`` order.

A later migration that rebuilds the events table on SQLite (``AlterField`` does: copy, drop,
rename) drops the trigger with the old table and must create it again (``create_trigger`` of
``0008_chain_queued_at``, which replaced this trigger by one that also records the clock);
verification reports events that were neither queued nor chained, so a lost trigger shows.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

EVENTS = '"auditlog_event"'
PENDING = '"auditlog_eventchainpending"'
TRIGGER = "auditlog_event_chain_queue"

POSTGRESQL_CREATE = [
    f"""
    CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {PENDING} (event_uuid, created)
        SELECT event_uuid, created FROM inserted_events
        ON CONFLICT (event_uuid) DO NOTHING;
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE TRIGGER {TRIGGER} AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS inserted_events
    FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS {TRIGGER} ON {EVENTS}",
    f"DROP FUNCTION IF EXISTS {TRIGGER}()",
]
# OR IGNORE: an event re-inserted under a pk still queued is queued already.
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER {TRIGGER} AFTER INSERT ON {EVENTS}
    BEGIN
        INSERT OR IGNORE INTO {PENDING} (event_uuid, created) VALUES (NEW.event_uuid, NEW.created);
    END
    """,
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TRIGGER}"]
BACKFILL = f"INSERT INTO {PENDING} (event_uuid, created) SELECT event_uuid, created FROM {EVENTS}"


def create_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)
    if statements:
        schema_editor.execute(BACKFILL)


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP}.get(vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('auditlog', '0003_default_notification_rules'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChainCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.TextField(choices=[('checkpoint', 'Checkpoint'), ('prune', 'Prune')], default='checkpoint')),
                ('sequence', models.BigIntegerField()),
                ('chain_hash', models.CharField(max_length=64)),
                ('created', models.DateTimeField(default=django.utils.timezone.now)),
                ('first_sequence', models.BigIntegerField(blank=True, null=True)),
                ('last_sequence', models.BigIntegerField(blank=True, null=True)),
                ('first_prev', models.CharField(blank=True, max_length=64, null=True)),
                ('last_hash', models.CharField(blank=True, max_length=64, null=True)),
                ('count', models.BigIntegerField(blank=True, null=True)),
                ('signature', models.CharField(max_length=64)),
                ('key_id', models.CharField(max_length=16)),
            ],
            options={
                'verbose_name': 'chain checkpoint',
            },
        ),
        migrations.AddIndex(
            model_name='chaincheckpoint',
            index=models.Index(fields=['kind', 'sequence'], name='auditlog_chain_kind_seq_idx'),
        ),
        migrations.AddIndex(
            model_name='chaincheckpoint',
            index=models.Index(fields=['kind', 'first_sequence'], name='auditlog_chain_kind_first_idx'),
        ),
        migrations.CreateModel(
            name='EventChainLink',
            fields=[
                ('sequence', models.BigIntegerField(primary_key=True, serialize=False)),
                ('event_uuid', models.UUIDField(unique=True)),
                ('prev_hash', models.CharField(max_length=64)),
                ('chain_hash', models.CharField(max_length=64)),
                ('event', models.ForeignObject(from_fields=['event_uuid'], null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='auditlog.event', to_fields=['event_uuid'])),
            ],
            options={
                'verbose_name': 'event chain link',
            },
        ),
        migrations.CreateModel(
            name='EventChainPending',
            fields=[
                ('event_uuid', models.UUIDField(primary_key=True, serialize=False)),
                ('created', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'pending chain event',
                'indexes': [models.Index(fields=['created', 'event_uuid'], name='auditlog_chain_pending_idx')],
            },
        ),
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]
