"""How ``make run`` starts and stops the Procfile's processes, so that Ctrl-C stops them
cleanly and quietly.

``python -m project.runner start [HONCHO ARGS]`` runs ``honcho start`` in a process group of
its own that takes over the terminal, the way a shell runs a job: Ctrl-C then reaches honcho
(which stops the processes in order) and not ``make``, which would otherwise die of the same
signal and report the recipe as failed. An interrupt is the normal way to stop, so it ends
with status 0.

``python -m project.runner shield COMMAND...`` (used in the Procfile) runs COMMAND in a
process group of its own and passes it the signals it is sent. honcho stops a process by
signalling its whole group; a Celery worker's pool processes would then die of the signal
while the worker is shutting them down ("ForkPoolWorker exited with signal 15"); the worker
alone, signalled, stops them in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

INTERRUPTED = {130, -signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGTERM}
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 30  # seconds from honcho's SIGTERM to its SIGKILL


@contextlib.contextmanager
def terminal_foreground(pgid: int) -> Iterator[None]:
    """Give the controlling terminal (if any) to process group ``pgid`` for the block."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:  # no terminal (CI, a test, a service manager): nothing to hand over
        yield
        return
    # A process outside the terminal's foreground group may still hand it over, if it
    # ignores the stop signal the kernel sends for that.
    previous_handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    previous = os.tcgetpgrp(tty)
    try:
        os.tcsetpgrp(tty, pgid)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(tty, previous)
        os.close(tty)
        signal.signal(signal.SIGTTOU, previous_handler)


def honcho(honcho_args: Sequence[str]) -> int:
    """honcho's command line, with our stop timeout."""
    import honcho.command
    import honcho.manager

    honcho.manager.KILL_WAIT = STOP_TIMEOUT
    try:
        honcho.command.main(list(honcho_args))
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


def start(honcho_args: Sequence[str]) -> int:
    """``honcho start`` as the terminal's foreground job; 0 when it was interrupted."""
    command = [sys.executable, "-m", "project.runner", "honcho", "start", *honcho_args]
    child = subprocess.Popen(command, process_group=0)  # noqa: S603 - our own module
    with terminal_foreground(child.pid):
        # Without a terminal the signals come to us: pass them on, like a shell would.
        for signum in FORWARDED:
            signal.signal(signum, lambda number, _frame: child.send_signal(number))
        code = child.wait()
    return 0 if code in INTERRUPTED else code


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM if the shield itself is killed (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def shield(command: Sequence[str]) -> int:
    """Run ``command`` in a group of its own; signals sent to us go to its main process only."""
    child = subprocess.Popen(  # noqa: S603 - the Procfile's own command
        list(command), process_group=0, preexec_fn=_die_with_parent
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    code = child.wait()
    return 0 if code in INTERRUPTED else code


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "start":
        return start(argv[1:])
    if argv and argv[0] == "honcho":
        return honcho(argv[1:])
    if len(argv) > 1 and argv[0] == "shield":
        return shield(argv[2:] if argv[1] == "--" else argv[1:])
    sys.stderr.write("usage: python -m project.runner start [HONCHO ARGS] | shield COMMAND...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
