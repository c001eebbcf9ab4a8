"""Real servers for end-to-end tests: gunicorn serving this project on a free loopback port,
and a throw-away PostgreSQL cluster of a test's own (which, unlike the shared one, a test may
stop and restart)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from project.local_server import free_port, gunicorn, wait_for_port

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


@contextmanager
def running_gunicorn(
    database_url: str,
    data_dir: Path,
    *,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    asgi: bool = False,
) -> Iterator[str]:
    """``gunicorn project.wsgi`` (``asgi``: ``project.asgi`` on uvicorn workers, as ``make
    run``) on the given database until the block ends; yields its URL."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        # Reads on the record add events as a test reads; the tests that count events exactly
        # run without them, and tests of reads turn them on (tests/auditlog/test_reads.py).
        "AUDIT_READS": "false",
        **(extra_env or {}),
    }
    log = data_dir / f"gunicorn-{uuid.uuid4().hex[:8]}.log"  # one per server
    with gunicorn(env=env, log=log, workers=workers, extra_args=["--timeout=60"], asgi=asgi) as url:
        yield url


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    for directory in POSTGRES_BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class Cluster:
    """A PostgreSQL cluster of our own: trust authentication, loopback only."""

    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int
    as_user: str | None  # initdb refuses to run as root: run the server as this user then

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.data_dir.parent / "postgres.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w", "start")
        wait_for_port(self.port, None, log)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def throwaway_postgres() -> Iterator[Cluster]:
    """Start a fresh PostgreSQL cluster in a temporary directory; stop and delete it afterwards.

    Raises ``LookupError`` when PostgreSQL's server programs are not installed.
    """
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise LookupError("PostgreSQL's initdb/pg_ctl are not installed")
    # Not pytest's tmp_path: as root the cluster runs as the postgres user, who must reach it.
    base = Path(tempfile.mkdtemp(prefix="auditlog-pg-"))
    as_user = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = "postgres"
        shutil.chown(base, user=as_user)
    cluster = Cluster(bin_dir, base / "data", base, free_port(), as_user)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def streaming_replica(primary: Cluster) -> Iterator[Cluster]:
    """A hot standby of ``primary``, copied with ``pg_basebackup`` and fed by streaming
    replication, on a loopback port of its own; stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="auditlog-replica-"))
    if primary.as_user:
        shutil.chown(base, user=primary.as_user)
    replica = Cluster(primary.bin_dir, base / "data", base, free_port(), primary.as_user)
    try:
        replica._run(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.data_dir), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        replica.start()
        yield replica
    finally:
        replica.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
