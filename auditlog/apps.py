from django.apps import AppConfig


class AuditlogConfig(AppConfig):
    name = "auditlog"
    verbose_name = "Events"

    def ready(self) -> None:
        from django.core import checks
        from django.db.models.signals import post_migrate, pre_migrate

        from auditlog import (
            bulkcapture,
            capture,
            dbcapture,
            partitions,
            receivers,
            signals,
            triggers,
        )
        from auditlog.api import schema  # noqa: F401  (registers the OpenAPI extensions)

        capture.connect()
        bulkcapture.install()  # update(), bulk_create(), bulk_update() on the signal path
        # PostgreSQL: triggers record the changes (installed by migrate); the helpers they
        # call are (re)created after every migrate, from the redaction policy of the day.
        triggers.register({m for m in capture.audited_models() if m._meta.db_table})
        pre_migrate.connect(dbcapture._on_pre_migrate, sender=self, dispatch_uid="auditlog.db")
        post_migrate.connect(dbcapture._on_post_migrate, sender=self, dispatch_uid="auditlog.db")
        dbcapture.connect()
        signals.replace_last_login_receiver()
        checks.register(partitions.check_autovacuum, checks.Tags.database)
        receivers.connect()
        from auditlog.feed import events_sealed
        from auditlog.live import announce

        events_sealed.connect(announce.on_events_sealed, dispatch_uid="auditlog.live.announce")
