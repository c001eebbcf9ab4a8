"""WSGI entry point (gunicorn project.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from project.env import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# 4: gunicorn's "the application failed to load", which stops it, where 1 would only make it
# start the worker again (and print the message again) forever.
load_settings_or_exit(status=4)

application = get_wsgi_application()
