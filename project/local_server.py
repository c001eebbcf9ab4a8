"""Starting this project's web server on a free loopback port, for the load test, the
screenshots and the end-to-end tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not listen in time; the message has its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, process: subprocess.Popen[Any] | None, log: Path, timeout: float = START_TIMEOUT
) -> None:
    """Return once something listens on ``port``; raise :class:`ServerDidNotStart` if
    ``process`` exits first or nothing listens within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerDidNotStart(f"the server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise ServerDidNotStart(f"nothing listens on port {port}:\n{log.read_text()}")


@contextmanager
def gunicorn(
    *,
    env: Mapping[str, str],
    log: Path,
    workers: int = 2,
    extra_args: Sequence[str] = (),
    asgi: bool = False,
) -> Iterator[str]:
    """``gunicorn project.wsgi`` (or ``project.asgi`` on uvicorn workers, as ``make run``
    serves it) with ``env`` until the block ends, its output in ``log``; yields its URL."""
    port = free_port()
    serving = (
        ["project.asgi", "--worker-class=uvicorn_worker.UvicornWorker"]
        if asgi
        else ["project.wsgi", "--threads=4"]
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *serving,
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        "--graceful-timeout=5",
        *extra_args,
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, cwd=REPO, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
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
