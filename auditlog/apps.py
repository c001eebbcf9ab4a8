from django.apps import AppConfig


class AuditlogConfig(AppConfig):
    name = "auditlog"
    verbose_name = "Events"

    def ready(self) -> None:
        from auditlog import capture, receivers, signals
        from auditlog.api import schema  # noqa: F401  (registers the OpenAPI extensions)

        capture.connect()
        signals.replace_last_login_receiver()
        receivers.connect()
        from auditlog.feed import events_sealed
        from auditlog.live import announce

        events_sealed.connect(announce.on_events_sealed, dispatch_uid="auditlog.live.announce")
