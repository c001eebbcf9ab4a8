"""Fill the database with a realistic directory and N events over the last 30 days."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from auditlog.demo import load_demo_data


class Command(BaseCommand):
    help = "Create demo users, groups and brands, and N demo events (bulk insert)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--events", type=int, default=10_000, help="How many events (default 10000)."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")

    def handle(self, *args: Any, events: int, seed: int, **options: Any) -> None:
        if events < 0:
            raise CommandError("--events must be zero or more.")
        with tqdm(
            total=events, unit="event", file=sys.stderr, disable=options["verbosity"] < 1
        ) as bar:
            summary = load_demo_data(events=events, seed=seed, progress=bar.update)
        self.stdout.write(
            f"Demo data: {summary.users} users, {summary.groups} groups, {summary.events} events "
            f"from {summary.countries} countries."
        )
