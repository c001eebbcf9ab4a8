"""A notification's event is referenced without a database constraint: a partitioned events
table (PostgreSQL, ``auditlog.0012``) has no unique key on ``event_uuid`` alone that a foreign
key could point at. Retention clears the references to the events it deletes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("auditlog", "0011_event_rollups"),
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                to="auditlog.event",
            ),
        ),
    ]
