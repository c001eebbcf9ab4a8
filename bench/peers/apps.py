from django.apps import AppConfig


class PeersConfig(AppConfig):
    """django-simple-history on the project's own User model, for bench/ only (its table is
    created by ``migrate --run-syncdb``; the product never installs it)."""

    name = "bench.peers"
    label = "peers"
    default_auto_field = "django.db.models.BigAutoField"
