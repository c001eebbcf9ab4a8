"""Everything a first start needs: migrations, an admin, default groups and demo data."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from auditlog.demo import demo_directory_exists, load_demo_data
from directory.models import SUPERUSER_GROUP_NAME, User
from directory.roles import ensure_default_groups


class Command(BaseCommand):
    help = "Migrate, create the admin user and default groups, and load demo data on first start."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--demo-events", type=int, default=settings.DEMO_EVENTS)

    def handle(self, *args: Any, admin_username: str, demo_events: int, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        ensure_default_groups()
        if not User.objects.filter(username=admin_username).exists():
            password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            User.objects.create_superuser(admin_username, f"{admin_username}@localhost", password)
            shown = "from ADMIN_PASSWORD" if os.environ.get("ADMIN_PASSWORD") else password
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created the administrator '{admin_username}' (group {SUPERUSER_GROUP_NAME}), "
                    f"password: {shown}"
                )
            )
        else:
            self.stdout.write(f"The administrator '{admin_username}' exists already.")
        if demo_events and not demo_directory_exists():
            self.stdout.write(f"Loading {demo_events} demo events (first start)...")
            with tqdm(total=demo_events, unit="event", file=sys.stderr) as bar:
                summary = load_demo_data(events=demo_events, progress=bar.update)
            self.stdout.write(
                f"Demo data: {summary.users} users, {summary.events} events from "
                f"{summary.countries} countries."
            )
