"""Convert a plain events table (PostgreSQL) into the partitioned one, resumably, with a
progress bar (see :mod:`auditlog.partitioning`)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from auditlog import partitioning, partitions


class Command(BaseCommand):
    help = (
        "PostgreSQL: partition the events table by month without losing an event. Copies in "
        "batches while the product keeps running, resumes where an interrupted run stopped, "
        "then swaps the tables in one short locked transaction. The plain table is kept as "
        f"{partitioning.OLD} until --drop-old."
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
            help=f"Drop {partitioning.OLD}, the plain table kept by an earlier conversion.",
        )

    def handle(self, *args: Any, batch_size: int, max_batches: int | None, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Partitioning needs PostgreSQL; SQLite keeps the plain table.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if max_batches is not None and max_batches < 1:
            raise CommandError("--max-batches must be at least 1.")
        if options["drop_old"]:
            with connection.cursor() as cursor:
                dropped = partitioning.drop_old(cursor)
            self.stdout.write(
                f"Dropped {partitioning.OLD}." if dropped else f"There is no {partitioning.OLD}."
            )
            return
        with connection.cursor() as cursor:
            if partitioning.state(cursor) == "partitioned":
                created = partitions.ensure_partitions()
                self.stdout.write(
                    "The events table is partitioned already"
                    + (f"; created {', '.join(created)}." if created else ".")
                )
                return
            partitioning.prepare(cursor)
            copied, total = partitioning.progress(cursor)
        with tqdm(
            total=total,
            initial=copied,
            unit="event",
            disable=options["verbosity"] < 1,
            file=sys.stderr,
        ) as bar:
            done = partitioning.convert(
                batch_size=batch_size, max_batches=max_batches, on_batch=bar.update
            )
        if not done:
            self.stdout.write(
                f"Stopped after {max_batches} batches; run the command again to resume."
            )
            return
        self.stdout.write(
            f"The events table is partitioned; the plain table is kept as {partitioning.OLD}"
            " (drop it with --drop-old once you are satisfied)."
        )
