#!/usr/bin/env python3
"""Check a received stream: nothing missing, nothing altered (standard library only).

    python verify_stream.py [--key SIGNING_KEY] received.jsonl [more.jsonl ...]   (or stdin)

Reads JSON lines as a destination sent them (one record per line; a Splunk HEC object is
unwrapped to its ``event``; a syslog line is read from its first ``{``, the message). Each
record carries ``chain``: its ``sequence`` in the sender's hash chain, the link ``hash``, the
``prev_hash`` and ``previous_sequence``, the sequence of the record sent to this destination
before it. The script reports

* a gap: a record whose ``previous_sequence`` is not the sequence of the record before it
  (records were removed, or never arrived);
* an altered link: two consecutive chain positions whose ``prev_hash`` is not the hash before;
* an altered record: with ``--key`` (the destination's signing key), a record whose
  ``chain.hmac`` (HMAC-SHA256 of the record's canonical JSON without it) does not match, or
  is missing;
* a duplicate whose content differs from the first copy (plain duplicates, which follow a
  worker crash under at-least-once delivery, are counted, not errors).

``previous_sequence: null`` marks the start of a stream or of a replay. Exit status 0 when
all is well, 1 when a problem was found.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

CHAIN_KEYS = {"sequence", "hash", "prev_hash", "previous_sequence"}


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def find_chain(document: Any) -> dict[str, Any] | None:
    """The ``chain`` object of a record, wherever its format put it (``chain`` in ``api``,
    ``auditlog.chain`` in ECS, ``unmapped.chain`` in OCSF)."""
    if isinstance(document, dict):
        if document.keys() >= CHAIN_KEYS:
            return document
        for value in document.values():
            if (found := find_chain(value)) is not None:
                return found
    return None


@dataclass
class Report:
    records: int = 0
    duplicates: int = 0
    restarts: int = 0
    first: int | None = None
    last: int | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        span = f"sequences {self.first}..{self.last}" if self.records else "no records"
        head = (
            f"{self.records} records ({span}), {self.duplicates} duplicates, "
            f"{self.restarts} restarts: "
        )
        if not self.problems:
            return head + "OK"
        return head + f"{len(self.problems)} problems\n" + "\n".join(self.problems)


def verify(lines: Iterable[str], key: str | None = None) -> Report:
    report = Report()
    seen: dict[int, bytes] = {}
    last_sequence: int | None = None
    last_hash: str | None = None
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        if not raw.lstrip().startswith("{") and "{" in raw:
            raw = raw[raw.index("{") :]  # a syslog line as a receiver stored it: the MSG part
        try:
            document = json.loads(raw)
        except ValueError:
            report.problems.append(f"line {number}: not JSON")
            continue
        if isinstance(document, dict) and {"event", "sourcetype"} <= document.keys():
            document = document["event"]  # Splunk HEC's envelope
        chain = find_chain(document)
        if not isinstance(document, dict) or chain is None:
            report.problems.append(f"line {number}: no chain (sequence, hash) in the record")
            continue
        sequence = chain["sequence"]
        signature = chain.pop("hmac", None)
        if key is not None:
            expected = hmac.new(key.encode(), canonical(document), hashlib.sha256).hexdigest()
            if signature is None:
                report.problems.append(f"line {number}: sequence {sequence} is not signed")
            elif not hmac.compare_digest(str(signature), expected):
                report.problems.append(
                    f"line {number}: sequence {sequence} was altered (its hmac does not match)"
                )
        # A replay sends a record again with previous_sequence null: the same record.
        previous = chain["previous_sequence"]
        chain["previous_sequence"] = None
        digest = hashlib.sha256(canonical(document)).digest()
        chain["previous_sequence"] = previous
        if sequence in seen:
            if seen[sequence] != digest:
                report.problems.append(
                    f"line {number}: sequence {sequence} arrived again with other content"
                )
            report.duplicates += 1
            continue
        seen[sequence] = digest
        report.records += 1
        if previous is None:
            report.restarts += 1
        elif last_sequence is not None and previous != last_sequence:
            if previous > last_sequence:
                report.problems.append(
                    f"line {number}: gap: the record(s) sent after sequence {last_sequence} "
                    f"up to {previous} are missing (sequence {sequence} follows {previous})"
                )
            else:
                report.problems.append(
                    f"line {number}: sequence {sequence} names {previous} before it, but "
                    f"{last_sequence} arrived last"
                )
        if (
            last_sequence is not None
            and sequence == last_sequence + 1
            and chain["prev_hash"] != last_hash
        ):
            report.problems.append(
                f"line {number}: sequence {sequence}: prev_hash is not the hash of "
                f"sequence {last_sequence} (a link was altered)"
            )
        report.first = sequence if report.first is None else min(report.first, sequence)
        report.last = sequence if report.last is None else max(report.last, sequence)
        last_sequence, last_hash = sequence, chain["hash"]
    return report


def _lines(paths: list[str], stdin: TextIO) -> Iterator[str]:
    if not paths:
        yield from stdin
        return
    for path in paths:
        with open(path, encoding="utf-8") as source:
            yield from source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="JSON-lines files, in order (default: stdin)")
    parser.add_argument("--key", help="the destination's signing key: check each record's hmac")
    args = parser.parse_args(argv)
    report = verify(_lines(args.files, sys.stdin), args.key)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
