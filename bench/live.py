"""Live streams under load: many open event streams on ONE web process (gunicorn with one
uvicorn worker, as ``make run`` serves it), a real Celery worker (two processes, as ``make
run``'s) that seals and runs the demo's notification rules, and list requests
that must keep their median within 2x of the idle figure; then the commit-to-client latency
of events posted through the API, measured at every stream.

    make bench-live                                   # or: .venv/bin/python bench/live.py
    --streams 200 --events 20000 --posts 40           # the defaults
    LIVE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/auditlog_live_bench (default;
        dropped and created afresh) or sqlite:///path; LIVE_BENCH_BROKER=redis://... (default:
        the file-system broker in a temporary directory)

Latency is counted from the moment the client starts the POST (the commit happens before its
201, so this overstates it a little) to the moment a stream has read the event. Every stream
must receive every posted event once, in order. The figures are printed and written to
bench/live-results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/auditlog_live_bench"
EVENTS = "/api/v3/events/events/"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def fresh_database(url: str, data_dir: Path) -> None:
    if url.startswith("postgres"):
        import psycopg
        from psycopg import sql

        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def web_threads(base: str) -> int:
    """Threads of the web worker (the process of the server at ``base`` with the most)."""
    marker = f"--bind={urlsplit(base).netloc}".encode()
    counts = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                counts.append(len(list((proc / "task").iterdir())))
        except OSError:
            continue
    return max(counts, default=0)


def list_p50(base: str, headers: dict[str, str], count: int) -> float:
    """Median seconds of ``count`` list requests (a page of 20, newest first), one at a time."""
    session = requests.Session()
    timings = []
    for n in range(count):
        started = time.perf_counter()
        response = session.get(
            base + EVENTS, params={"page_size": 20, "page": 1 + n % 5}, headers=headers, timeout=30
        )
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(timings)


class Streams:
    """``count`` event streams held open by one asyncio loop in a thread of its own."""

    def __init__(self, base: str, token: str, count: int) -> None:
        self.base, self.token, self.count = base, token, count
        self.received: list[dict[str, float]] = [{} for _ in range(count)]
        self.order: list[list[str]] = [[] for _ in range(count)]
        self.open = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks: list[Any] = []

    async def _one(self, index: int) -> None:
        parts = urlsplit(self.base)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
        writer.write(
            (
                f"GET {EVENTS}stream/?search=app%20%3D%20%22live-bench%22 HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        assert b" 200 " in status, status
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.open += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    pk = json.loads(line[6:])["pk"]
                    self.received[index][pk] = time.perf_counter()
                    self.order[index].append(pk)
        finally:
            writer.close()

    def start(self) -> None:
        self.thread.start()
        for index in range(self.count):
            self.tasks.append(asyncio.run_coroutine_threadsafe(self._one(index), self.loop))
        deadline = time.monotonic() + 60
        while self.open < self.count and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.open < self.count:
            raise SystemExit(f"only {self.open} of {self.count} streams opened")

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        time.sleep(0.5)  # the cancelled readers close their sockets
        self.loop.call_soon_threadsafe(self.loop.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=20_000, help="events loaded first")
    parser.add_argument("--posts", type=int, default=40, help="events posted while streaming")
    parser.add_argument("--requests", type=int, default=100, help="list requests per phase")
    parser.add_argument("--output", default=str(REPO / "bench" / "live-results.md"))
    options = parser.parse_args()
    url = os.environ.get("LIVE_BENCH_DATABASE_URL", DEFAULT_URL)
    data_dir = Path(tempfile.mkdtemp(prefix="live-bench-"))
    broker = os.environ.get("LIVE_BENCH_BROKER", "filesystem://")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": "live-bench",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
    }
    fresh_database(url, data_dir)
    print(f"Loading {options.events:,} events into {url.rsplit('/', 1)[-1]}...", flush=True)
    # The set-up's own tasks (sealing the demo events, the demo rules' notifications for them)
    # run in-process, so that the worker starts with an empty queue: the latency measured is
    # that of new events, not of a backlog.
    setup = {**env, "CELERY_TASK_ALWAYS_EAGER": "true"}
    manage(setup, "migrate", "--no-input", "-v", "0")
    manage(setup, "demo_data", "--events", str(options.events))
    token = (
        manage(
            setup,
            "shell",
            "-c",
            "from auditlog.chain import seal_pending; seal_pending()\n"
            "from directory.models import User; from directory.services import create_api_token\n"
            "u = User.objects.create_superuser('bench', 'bench@localhost', 'bench-Password-1')\n"
            "print(create_api_token(user=u).key)",
        )
        .strip()
        .splitlines()[-1]
    )
    headers = {"Authorization": f"Bearer {token}"}

    from project.local_server import gunicorn

    worker_log = (data_dir / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "--concurrency=2",  # as make run's worker
            "-Q",
            "live-bench",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=REPO,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        with gunicorn(env=env, log=data_dir / "web.log", workers=1, asgi=True) as base:
            list_p50(base, headers, 10)  # warm up
            idle = list_p50(base, headers, options.requests)
            print(f"  list p50, idle: {idle * 1000:.1f} ms", flush=True)
            threads_idle = web_threads(base)
            streams = Streams(base, token, options.streams)
            streams.start()
            threads_open = web_threads(base)
            print(f"  {streams.open} streams open; web threads {threads_idle} -> {threads_open}")
            loaded = list_p50(base, headers, options.requests)
            print(
                f"  list p50 with {streams.open} streams open: {loaded * 1000:.1f} ms", flush=True
            )
            posted: list[tuple[str, float]] = []
            session = requests.Session()
            for n in range(options.posts):
                started = time.perf_counter()
                response = session.post(
                    base + EVENTS,
                    json={"action": "custom_live_bench", "app": "live-bench", "context": {"n": n}},
                    headers=headers,
                    timeout=30,
                )
                assert response.status_code == 201, response.text
                posted.append((response.json()["pk"], started))
                time.sleep(0.25)
            deadline = time.monotonic() + 15
            wanted = [pk for pk, _ in posted]
            while time.monotonic() < deadline and any(len(o) < len(wanted) for o in streams.order):
                time.sleep(0.2)
            streams.stop()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    complete = sum(1 for order in streams.order if order == wanted)
    latencies = [
        got[pk] - started for got in streams.received for pk, started in posted if pk in got
    ]
    missing = options.streams * len(posted) - len(latencies)
    for order in streams.order:
        if order != wanted:
            extra = [pk for pk in order if pk not in wanted]
            print(
                f"  a stream got {len(order)} events for {len(wanted)} posted: "
                f"{len(order) - len(set(order))} twice, {len(extra)} not posted, "
                f"in order: {[pk for pk in order if pk in wanted] == wanted}"
            )
            break
    lost = [index for index, (pk, _) in enumerate(posted) if pk not in streams.received[0]]
    if lost:
        print(f"  not received by the first stream: posted events {lost}")
    for pk, started in posted[:: max(1, len(posted) // 5)]:
        got = [received[pk] - started for received in streams.received if pk in received]
        if got:
            print(
                f"  event {pk[:8]}: first stream {min(got) * 1000:.0f} ms, last {max(got) * 1000:.0f} ms"
            )
    p50, p95, worst = (percentile(latencies, 0.5), percentile(latencies, 0.95), max(latencies))
    ratio = loaded / idle
    lines = [
        "# Live streams benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {'PostgreSQL' if url.startswith('postgres') else 'SQLite'}"
        f" · broker {broker.split(':')[0]} · {options.events:,} events · one web process (gunicorn, "
        f"1 uvicorn worker) · {os.cpu_count()} cores shared with the client, the worker and the database",
        "",
        "| measure | figure | target | met |",
        "|---|---|---|---|",
        f"| list p50, idle | {idle * 1000:.1f} ms | | |",
        f"| threads of the web process, idle / {options.streams} streams open | {threads_idle} / {threads_open} | no thread per stream | {'yes' if threads_open - threads_idle < options.streams / 10 else '**no**'} |",
        f"| list p50, {options.streams} streams open | {loaded * 1000:.1f} ms ({ratio:.2f}x) | <= 2x idle | {'yes' if ratio <= 2 else '**no**'} |",
        f"| commit-to-client latency, {len(latencies):,} deliveries | p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {worst * 1000:.0f} ms | p95 <= 1 s | {'yes' if p95 <= 1 else '**no**'} |",
        f"| streams that got every event once, in order | {complete} of {options.streams} (missing deliveries: {missing}) | all | {'yes' if complete == options.streams else '**no**'} |",
        "",
    ]
    lines.append(
        "Load average during the run (1/5/15 min, this machine's other jobs included): "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
        + "\n"
    )
    report = "\n".join(lines)
    print(report)
    Path(options.output).write_text(report)


if __name__ == "__main__":
    main()
