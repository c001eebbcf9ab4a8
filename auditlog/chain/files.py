"""Exported checkpoint files (``manage.py export_checkpoints`` output), read back to check
the chain against records kept outside the database."""

from __future__ import annotations

import json
from collections.abc import Iterable

from auditlog.chain.signing import CheckpointRecord


class CheckpointFileError(ValueError):
    pass


_REQUIRED = ("kind", "sequence", "chain_hash", "created", "signature")


def read_checkpoint_lines(lines: Iterable[str]) -> list[CheckpointRecord]:
    """Parse ``export_checkpoints`` output (JSON lines); prune records become anchors at the
    end of their range. Raises :class:`CheckpointFileError` naming the line that is wrong."""
    records: list[CheckpointRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise CheckpointFileError(f"line {number} is not JSON.") from None
        if not isinstance(record, dict):
            raise CheckpointFileError(f"line {number} is not a JSON object.")
        missing = [name for name in _REQUIRED if name not in record]
        if missing:
            raise CheckpointFileError(f"line {number} has no {', '.join(missing)}.")
        if not isinstance(record["sequence"], int) or isinstance(record["sequence"], bool):
            raise CheckpointFileError(f"line {number}: sequence must be a whole number.")
        records.append(record)  # type: ignore[arg-type]
    return records
