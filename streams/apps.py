from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    verbose_name = "Streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.feed import events_sealed
        from streams import tasks

        # Every sealed batch wakes delivery (the schedule catches up whatever a wake-up missed).
        events_sealed.connect(tasks.on_events_sealed, dispatch_uid="streams.wake")
