"""Delete events whose retention has run out, in batches, with a progress bar."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from auditlog.models import Event
from auditlog.retention import RETENTION_BATCH_SIZE, delete_expired_events


class Command(BaseCommand):
    help = "Delete expired events (the scheduler also does this every 5 minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=RETENTION_BATCH_SIZE)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        expected = Event.objects.expired().count()
        with tqdm(
            total=expected,
            unit="event",
            disable=not expected or options["verbosity"] < 1,
            file=sys.stderr,
        ) as bar:
            deleted = delete_expired_events(batch_size=batch_size, progress=bar.update)
        self.stdout.write(f"Deleted {deleted} expired events.")
