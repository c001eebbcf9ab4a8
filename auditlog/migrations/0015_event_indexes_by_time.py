"""The event filters' indexes carry the time (``value, created DESC, event_uuid DESC``), so the
newest events of an action or a user are one ordered index walk (and a filter of several
values a walk each, merged by paging); custom actions get a small partial index by time. The
new indexes are built before the old ones go. On a partitioned table each index is built on
every partition; on a large plain table this migration takes a while (a few minutes at ten
million events) and holds the table's write lock meanwhile. The table is analysed at the end:
an expression index's statistics (of ``user.username``...) exist only once it is, and until
then the planner guesses how common each value is."""

import django.db.models.fields.json
from django.db import migrations, models


def analyze(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ANALYZE auditlog_event")


class Migration(migrations.Migration):
    dependencies = [
        ("auditlog", "0014_partition_chain_links"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                models.F("action"),
                models.OrderBy(models.F("created"), descending=True),
                models.OrderBy(models.F("event_uuid"), descending=True),
                name="auditlog_ev_action_t_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("action__startswith", "custom_")),
                fields=["-created", "-event_uuid"],
                include=("action",),
                name="auditlog_ev_custom_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                django.db.models.fields.json.KeyTransform("username", "user"),
                models.OrderBy(models.F("created"), descending=True),
                models.OrderBy(models.F("event_uuid"), descending=True),
                name="auditlog_ev_user_name_t_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                django.db.models.fields.json.KeyTransform("username", "context"),
                models.OrderBy(models.F("created"), descending=True),
                models.OrderBy(models.F("event_uuid"), descending=True),
                name="auditlog_ev_ctx_uname_t_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                django.db.models.fields.json.KeyTransform(
                    "pk", django.db.models.fields.json.KeyTransform("model", "context")
                ),
                models.OrderBy(models.F("created"), descending=True),
                models.OrderBy(models.F("event_uuid"), descending=True),
                name="auditlog_ev_ctx_mpk_t_idx",
            ),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="auditlog_ev_action_idx",
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="auditlog_ev_user_name_idx",
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="auditlog_ev_ctx_username_idx",
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="auditlog_ev_ctx_model_pk_idx",
        ),
        migrations.RunPython(analyze, migrations.RunPython.noop, elidable=True),
    ]
