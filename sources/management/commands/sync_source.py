"""Import an authentik source's events now, with a progress bar."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from sources.models import AuthentikSource
from sources.services import sync_source


class Command(BaseCommand):
    help = (
        "Import the events of the authentik source NAME (from where the last sync stopped; "
        "--full: everything again, already stored events are skipped)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--full", action="store_true", help="read every event again")
        parser.add_argument(
            "--page-size", type=int, default=None, help="events per request (1-1000)"
        )

    def handle(
        self, *args: Any, name: str, full: bool, page_size: int | None, **options: Any
    ) -> None:
        source = AuthentikSource.objects.filter(name=name).first()
        if source is None:
            known = ", ".join(AuthentikSource.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No authentik source named {name!r} (known: {known}).")
        if page_size is not None and not 1 <= page_size <= 1000:
            raise CommandError("--page-size must be between 1 and 1000.")
        with tqdm(
            unit="event", disable=options["verbosity"] < 1, file=sys.stderr, desc=name
        ) as bar:

            def progress(read: int, total: int | None) -> None:
                if total is not None and bar.total is None:
                    bar.total = total
                bar.update(read - bar.n)

            result = sync_source(
                source_id=source.pk, full=full, page_size=page_size, progress=progress
            )
        if result.busy:
            raise CommandError(f"Source {name} is being synced by another process; try later.")
        summary = (
            f"Source {name}: {result.read} events read, {result.imported} imported, "
            f"{result.skipped} skipped."
        )
        if result.error:
            raise CommandError(f"{summary} The sync failed: {result.error}")
        self.stdout.write(summary)
