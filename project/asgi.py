"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from project.env import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Each ASGI request runs in a thread of its own: PostgreSQL connections come from a pool per
# process (see DB_POOL_SIZE in the settings).
os.environ.setdefault("DB_POOL_SIZE", "10")
load_settings_or_exit()

application = get_asgi_application()
