"""Verify the whole event chain: every link, every gap, every signed checkpoint."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from auditlog.chain.files import CheckpointFileError, read_checkpoint_lines
from auditlog.chain.signing import CheckpointRecord
from auditlog.chain.verification import count_sealed, verify
from auditlog.reads import Read, record_read


class Command(BaseCommand):
    help = (
        "Verify the event chain; exit 0 when it is intact, else exit 1 with one line naming "
        "the first broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="Also check against checkpoints exported earlier (export_checkpoints output).",
        )
        parser.add_argument(
            "--from-sequence",
            type=int,
            default=1,
            metavar="N",
            help="Start at this sequence, anchored on the link before it (default 1).",
        )

    def handle(
        self, *args: Any, checkpoints: str | None, from_sequence: int, **options: Any
    ) -> None:
        if from_sequence < 1:
            raise CommandError("--from-sequence must be at least 1.")
        exported = _read_checkpoints(checkpoints) if checkpoints else []
        total = count_sealed(from_sequence=from_sequence)
        # The bar only on a terminal: piped, stderr carries nothing but the verdict.
        with tqdm(
            total=total,
            unit="event",
            file=sys.stderr,
            disable=None if options["verbosity"] >= 1 else True,
            leave=False,
        ) as bar:
            result = verify(
                from_sequence=from_sequence, extra_checkpoints=exported, progress=bar.update
            )
        record_read(
            kind=Read.CHAIN_VERIFICATION,
            via="command",
            what={
                "from_sequence": from_sequence,
                "checkpoints": checkpoints,
                "os_user": _os_user(),
            },
            details={"ok": result.ok, "verified": result.verified},
        )
        if result.first_broken is not None:
            raise CommandError(result.first_broken.message)
        self.stdout.write(result.summary())


def _read_checkpoints(name: str) -> list[CheckpointRecord]:
    path = Path(name)
    try:
        with path.open(encoding="utf-8") as lines:
            return read_checkpoint_lines(lines)
    except OSError as exc:
        raise CommandError(f"--checkpoints {name}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"--checkpoints {name}: not a UTF-8 text file.") from None
    except CheckpointFileError as exc:
        raise CommandError(f"--checkpoints {name}: {exc}") from None


def _os_user() -> str:
    """Who ran the command, as far as the system says (the event has no request to tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
