"""Print the event chain's signed checkpoints and prune records as JSON lines, for safekeeping
outside the database (``verify_events --checkpoints FILE`` reads them back)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from auditlog.chain.signing import checkpoint_record
from auditlog.models import ChainCheckpoint


class Command(BaseCommand):
    help = "Print the signed checkpoints of the event chain as JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=int,
            metavar="SEQ",
            help="Only records for sequences after SEQ (e.g. the last one exported).",
        )

    def handle(self, *args: Any, since: int | None, **options: Any) -> None:
        if since is not None and since < 0:
            raise CommandError("--since must be zero or more.")
        records = ChainCheckpoint.objects.order_by("sequence", "pk")
        if since is not None:
            records = records.filter(sequence__gt=since)
        for record in records.iterator():
            self.stdout.write(json.dumps(checkpoint_record(record), sort_keys=True))
