"""``manage.py verify_events`` and ``manage.py export_checkpoints``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from auditlog import chain
from auditlog.models import ChainCheckpoint
from tests.chain.conftest import TEST_KEY, at, db_pk, raw, rehash_from, write
from tests.conftest import REPO
from tests.workers import database_url


def sealed(count: int) -> None:
    for _ in range(count // 5):
        write(5)
        chain.seal_pending()


def verify_command(*args: str) -> str:
    out = StringIO()
    call_command("verify_events", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_an_intact_chain_prints_one_summary_line() -> None:
    sealed(10)
    write(1)
    assert verify_command() == (
        "Event chain intact: 10 events verified (sequences 1 to 10), 2 checkpoints checked, "
        "0 events removed on record (retention, erasure), 1 not sealed yet.\n"
    )


@pytest.mark.django_db
def test_a_broken_chain_is_one_line_naming_the_first_broken_link() -> None:
    sealed(10)
    target = at(6)
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"a": 1}', db_pk(target)])
    with pytest.raises(CommandError) as raised:
        verify_command()
    message = str(raised.value)
    assert message == (
        f"Event chain broken at sequence 6 (event {target.event_uuid}): content changed: the "
        "event no longer matches the hash it was sealed with."
    )
    assert "\n" not in message


@pytest.mark.django_db
def test_verification_can_start_at_a_sequence() -> None:
    sealed(10)
    assert "5 events verified (sequences 6 to 10)" in verify_command("--from-sequence", "6")
    with pytest.raises(CommandError, match=r"--from-sequence must be at least 1\."):
        verify_command("--from-sequence", "0")


@pytest.mark.django_db
def test_exported_checkpoints_catch_a_rewrite_the_database_no_longer_shows(
    tmp_path: Path,
) -> None:
    sealed(10)
    exported = tmp_path / "checkpoints.jsonl"
    out = StringIO()
    call_command("export_checkpoints", stdout=out)
    exported.write_text(out.getvalue())

    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"a": 1}', db_pk(at(2))])
    rehash_from(2)
    raw("DELETE FROM auditlog_chaincheckpoint")
    assert verify_command().startswith("Event chain intact")

    with pytest.raises(
        CommandError,
        match=r"^Event chain broken at sequence 5 .*checkpoint mismatch: the exported checkpoint",
    ):
        verify_command("--checkpoints", str(exported))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"kind": "checkpoint"}\nnot json\n',
            "line 1 has no sequence, chain_hash, created, signature.",
        ),
        ("\n[1, 2]\n", "line 2 is not a JSON object."),
        ("{oops\n", "line 1 is not JSON."),
    ],
)
def test_a_bad_checkpoint_file_is_refused_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(CommandError) as raised:
        verify_command("--checkpoints", str(path))
    assert str(raised.value) == f"--checkpoints {path}: {message}"


@pytest.mark.django_db
def test_a_missing_checkpoint_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file or directory"):
        verify_command("--checkpoints", str(tmp_path / "nowhere.jsonl"))


@pytest.mark.django_db
def test_export_prints_signed_json_lines_optionally_after_a_sequence() -> None:
    sealed(15)
    out = StringIO()
    call_command("export_checkpoints", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["sequence"] for line in lines] == [5, 10, 15]
    assert set(lines[0]) == {
        "kind",
        "sequence",
        "chain_hash",
        "created",
        "first_sequence",
        "last_sequence",
        "first_prev",
        "last_hash",
        "count",
        "signature",
        "key_id",
    }
    assert all(chain.signature_valid(line) for line in lines)
    assert lines[1]["chain_hash"] == at(10).chain_hash

    out = StringIO()
    call_command("export_checkpoints", "--since", "5", stdout=out)
    assert [json.loads(line)["sequence"] for line in out.getvalue().splitlines()] == [10, 15]
    assert ChainCheckpoint.objects.count() == 3


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(REPO / "var"),
        "DATABASE_URL": database_url(),
        "AUDIT_CHAIN_KEY": TEST_KEY,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_zero_when_intact_and_non_zero_with_one_line_when_broken(
    settings: Any,
) -> None:
    sealed(10)
    intact = _run("verify_events")
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.splitlines() == [
        "Event chain intact: 10 events verified (sequences 1 to 10), 2 checkpoints checked, "
        "0 events removed on record (retention, erasure), 0 not sealed yet."
    ]
    assert intact.stderr == ""

    gone = at(3)
    raw("DELETE FROM auditlog_event WHERE event_uuid = %s", [db_pk(gone)])
    failed = _run("verify_events")
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.strip().splitlines() == [
        f"CommandError: Event chain broken at sequence 3 (event {gone.event_uuid}): events "
        "missing: the event was deleted (its link remains) and no signed prune record accounts "
        "for it; the chain resumes at sequence 4."
    ]


@pytest.mark.django_db
def test_an_event_that_is_not_chained_fails_the_command_naming_it() -> None:
    sealed(5)
    (bypassed,) = write(1)
    raw("DELETE FROM auditlog_eventchainpending WHERE event_uuid = %s", [db_pk(bypassed)])
    with pytest.raises(CommandError) as raised:
        verify_command()
    assert str(raised.value) == (
        f"Event chain broken at event {bypassed.pk}: events not chained: it is neither chained "
        "nor waiting to be sealed (inserted with the queue trigger disabled, or taken out of the "
        "queue)."
    )
