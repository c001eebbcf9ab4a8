"""The receiver-side check (streams/verify_stream.py, standard library only) on a real
stream: it passes the stream as received, and finds a removed record, an altered record, an
altered link, and a forged signature."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams.models import Transport
from tests.conftest import REPO
from tests.streams.conftest import SIGNING_KEY, deliver_all, make_destination

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(make_events, tmp_path: Path) -> list[str]:
    make_events(6)
    path = tmp_path / "received.jsonl"
    deliver_all(make_destination(transport=Transport.FILE, path=str(path), batch_size=2))
    return path.read_text().splitlines()


def _check(lines: list[str], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [sys.executable, str(REPO / "streams" / "verify_stream.py"), *extra, str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},  # standalone: no Django, no project on the path
        cwd=tmp_path,
    )


def test_the_stream_as_received_passes(received, tmp_path: Path) -> None:
    result = _check(received, tmp_path, "--key", SIGNING_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("6 records (sequences 1..6), 0 duplicates, 1 restarts: OK")


def test_a_removed_record_is_a_gap(received, tmp_path: Path) -> None:
    result = _check(received[:3] + received[4:], tmp_path, "--key", SIGNING_KEY)
    assert result.returncode == 1
    assert "gap: the record(s) sent after sequence 3 up to 4 are missing" in result.stdout


def test_an_altered_record_fails_its_signature(received, tmp_path: Path) -> None:
    record = json.loads(received[2])
    record["context"]["n"] = 99
    altered = [*received[:2], json.dumps(record), *received[3:]]
    result = _check(altered, tmp_path, "--key", SIGNING_KEY)
    assert result.returncode == 1
    assert "sequence 3 was altered (its hmac does not match)" in result.stdout
    assert "gap" not in result.stdout
    assert _check(received, tmp_path, "--key", "another-key").stdout.count("was altered") == 6


def test_an_altered_link_breaks_the_hash_chain_even_without_the_key(
    received, tmp_path: Path
) -> None:
    record = json.loads(received[3])
    record["chain"]["prev_hash"] = "0" * 64
    result = _check([*received[:3], json.dumps(record), *received[4:]], tmp_path)
    assert result.returncode == 1
    assert "sequence 4: prev_hash is not the hash of sequence 3" in result.stdout


def test_duplicates_are_counted_and_a_changed_duplicate_is_reported(
    received, tmp_path: Path
) -> None:
    resent = [*received[:4], *received[2:4], *received[4:]]
    result = _check(resent, tmp_path, "--key", SIGNING_KEY)
    assert result.returncode == 0 and "2 duplicates" in result.stdout
    record = json.loads(received[2])
    record["action"] = "logout"
    result = _check([*received[:4], json.dumps(record), *received[4:]], tmp_path)
    assert "sequence 3 arrived again with other content" in result.stdout


def test_the_readme_example(received, tmp_path: Path) -> None:
    record = json.loads(received[2])
    record["context"]["n"] = 99
    tampered = [*received[:2], json.dumps(record), *received[4:]]
    result = _check(tampered, tmp_path, "--key", SIGNING_KEY)
    readme = (REPO / "README.md").read_text()
    assert result.stdout.replace(str(tmp_path / "check.jsonl"), "tampered.jsonl") in readme


@pytest.mark.parametrize("name", ["ecs", "ocsf"])
def test_every_json_format_is_signed_and_checked(name: str, make_events, tmp_path: Path) -> None:
    make_events(4)
    path = tmp_path / f"{name}.jsonl"
    deliver_all(make_destination(transport=Transport.FILE, path=str(path), format=name))
    lines = path.read_text().splitlines()
    assert _check(lines, tmp_path, "--key", SIGNING_KEY).returncode == 0
    record = json.loads(lines[1])
    record["@timestamp" if name == "ecs" else "time"] = 0
    result = _check([lines[0], json.dumps(record), *lines[2:]], tmp_path, "--key", SIGNING_KEY)
    assert "sequence 2 was altered" in result.stdout
    result = _check([lines[0], *lines[2:]], tmp_path, "--key", SIGNING_KEY)
    assert "gap: the record(s) sent after sequence 1 up to 2 are missing" in result.stdout


def test_cef_lines_go_unsigned_but_carry_the_chain(make_events, tmp_path: Path) -> None:
    make_events(2)
    path = tmp_path / "cef.log"
    deliver_all(make_destination(transport=Transport.FILE, path=str(path), format="cef"))
    first, second = path.read_text().splitlines()
    assert first.startswith("CEF:0|") and "hmac" not in first
    assert "cn1=2 cn1Label=chainSequence" in second and "cn2=1" in second


def test_records_with_any_text_and_numbers_verify(make_events, tmp_path: Path) -> None:
    make_events(3, name='chloé 東京 \u2028 "quoted" \\ tab\t', ratio=0.1, big=2**62, neg=-1.5e-7)
    path = tmp_path / "unicode.jsonl"
    deliver_all(make_destination(transport=Transport.FILE, path=str(path)))
    # Lines end at "\n" only: JSON leaves U+2028 raw, which str.splitlines() would split at.
    lines = path.read_text().split("\n")[:-1]
    assert len(lines) == 3
    result = _check(lines, tmp_path, "--key", SIGNING_KEY)
    assert result.returncode == 0, result.stdout
