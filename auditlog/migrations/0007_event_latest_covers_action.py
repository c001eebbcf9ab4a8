"""The newest-first index also carries the action (PostgreSQL), so the volume chart counts
events per hour and action from the index alone. An index swap: no table rebuild on SQLite,
so the chain's trigger stays."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auditlog', '0006_systemsettings_gdpr_compliance'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='event',
            name='auditlog_ev_latest_idx',
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['-created', '-event_uuid'], include=('action',), name='auditlog_ev_latest_idx'),
        ),
    ]
