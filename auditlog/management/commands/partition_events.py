"""Convert a plain events table (PostgreSQL), then a plain chain link table, into the
partitioned ones, resumably, with a progress bar (see :mod:`auditlog.partitioning`)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from auditlog import partitioning, partitions


class Command(BaseCommand):
    help = (
        "PostgreSQL: partition the events table, then the chain's link table, by month without "
        "losing a row. Copies in batches while the product keeps running, resumes where an "
        "interrupted run stopped, then swaps the tables in one short locked transaction. The "
        f"plain tables are kept as {partitioning.OLD} and {partitioning.LINKS.old} until "
        "--drop-old."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=partitioning.BATCH_SIZE)
        parser.add_argument(
            "--max-batches",
            type=int,
            default=None,
            help="Stop after this many batches (run again to resume).",
        )
        parser.add_argument(
            "--drop-old",
            action="store_true",
            help="Drop the plain tables kept by an earlier conversion.",
        )

    def handle(self, *args: Any, batch_size: int, max_batches: int | None, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Partitioning needs PostgreSQL; SQLite keeps the plain table.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if max_batches is not None and max_batches < 1:
            raise CommandError("--max-batches must be at least 1.")
        if options["drop_old"]:
            for conversion in (partitioning.EVENTS, partitioning.LINKS):
                with connection.cursor() as cursor:
                    dropped = partitioning.drop_old(cursor, conversion)
                self.stdout.write(
                    f"Dropped {conversion.old}." if dropped else f"There is no {conversion.old}."
                )
            return
        converted = False
        for conversion, unit in ((partitioning.EVENTS, "event"), (partitioning.LINKS, "link")):
            with connection.cursor() as cursor:
                if partitioning.state(cursor, conversion) == "partitioned":
                    continue
                partitioning.prepare(cursor, conversion)
                copied, total = partitioning.progress(cursor, conversion)
            with tqdm(
                total=total,
                initial=copied,
                unit=unit,
                disable=options["verbosity"] < 1,
                file=sys.stderr,
            ) as bar:
                done = partitioning.convert(
                    batch_size=batch_size,
                    max_batches=max_batches,
                    on_batch=bar.update,
                    conversion=conversion,
                )
            if not done:
                self.stdout.write(
                    f"Stopped after {max_batches} batches of {conversion.name};"
                    " run the command again to resume."
                )
                return
            converted = True
            self.stdout.write(
                f"{conversion.name} is partitioned; the plain table is kept as {conversion.old}"
                " (drop it with --drop-old once you are satisfied)."
            )
        if not converted:
            created = partitions.ensure_partitions()
            self.stdout.write(
                "The events table and the chain's link table are partitioned already"
                + (f"; created {', '.join(created)}." if created else ".")
            )
