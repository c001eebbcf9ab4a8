"""Real servers for end-to-end tests: gunicorn serving this project on a free loopback port,
and a throw-away PostgreSQL cluster of a test's own (which, unlike the shared one, a test may
stop and restart)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any] | None, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}:\n{log.read_text()}")


@contextmanager
def running_gunicorn(
    database_url: str, data_dir: Path, *, workers: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """``gunicorn project.wsgi`` on the given database until the block ends; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log = data_dir / f"gunicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "project.wsgi",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--threads=4",
        "--graceful-timeout=5",
        "--timeout=60",
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


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
