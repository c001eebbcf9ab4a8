"""``make run`` for real: the web server, the worker and the scheduler start from the Procfile
(on a free port, with a throw-away DATA_DIR), and Ctrl-C on the terminal stops all three
cleanly, quickly and quietly, with ``make`` itself ending in success."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from project.local_server import free_port
from tests.conftest import REPO

START_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0  # project.runner lets honcho wait 30 s before it kills anything
# What an interrupted `make run` used to print: the pool's processes killed under the worker,
# honcho's hard kill, make's failure, and kombu's complaint about the embedded broker's URL.
NOISE = [
    "exited with signal",
    "signal 15",
    "SIGKILL",
    "Error 130",
    "Interrupt",
    "Traceback",
    "No hostname was supplied",
]


class Terminal:
    """A pseudo-terminal that ``command`` runs in as the foreground job, as in a shell."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port  # where the web server listens
        self.data_dir: Path | None = None
        self.master, slave = pty.openpty()

        def take_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(slave)
        self.output = b""

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the terminal closed: everything on it has exited
                    return
                if not chunk:
                    return
                self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def press_ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def web_answers(port: int) -> bool:
    try:
        with urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_", "DJANGO_"))
    }
    env.update(
        DATA_DIR=str(tmp_path), DEMO_EVENTS="0", ADMIN_PASSWORD="run-Password-1", TERM="dumb"
    )
    # The same recipe as `make run`; -o: the installed virtualenv and front-end libraries
    # are taken as they are, never rebuilt by a test.
    command = ["make", "-o", ".venv/.installed", "-o", "node_modules/.installed"]
    terminal = Terminal([*command, "run", f"PORT={port}"], env, port)
    terminal.data_dir = tmp_path
    yield terminal
    terminal.close()


def test_ctrl_c_stops_make_run_cleanly_and_quietly(make_run: Terminal) -> None:
    port = make_run.port
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        make_run.read(1)
        started = "ready." in make_run.text and "beat: Starting" in make_run.text
        if started and web_answers(port):
            break
        assert make_run.process.poll() is None, make_run.text[-3000:]
    else:
        pytest.fail(f"make run did not start:\n{make_run.text[-3000:]}")
    assert "No hostname was supplied" not in make_run.text  # the embedded broker's URL
    # Each process keeps its JSON lines in a file of its own under the data directory.
    assert make_run.data_dir is not None
    for role in ("web", "worker", "scheduler"):
        assert (make_run.data_dir / "logs" / f"{role}.log").read_text().startswith("{"), role

    make_run.press_ctrl_c()
    pressed = time.monotonic()
    make_run.read(STOP_TIMEOUT)
    returncode = make_run.process.wait(timeout=5)
    took = time.monotonic() - pressed
    output = make_run.text[make_run.text.index("SIGINT received") :]

    assert returncode == 0, make_run.text[-3000:]
    assert took < STOP_TIMEOUT
    for process in ("web.1", "worker.1", "scheduler.1"):
        assert f"{process} stopped (rc=0)" in output, output
    for line in NOISE:
        assert line not in make_run.text, f"{line!r} in:\n{output}"
    assert not web_answers(port)


def test_make_help_names_the_real_address() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "help", "HOST=0.0.0.0", "PORT=9001"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "http://0.0.0.0:9001" in result.stdout
    assert "$(" not in result.stdout
