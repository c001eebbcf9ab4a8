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
