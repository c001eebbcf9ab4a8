from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Data exports"

    def ready(self) -> None:
        from exports import receivers

        receivers.connect()
