"""Streams to SIEMs: events per second one worker delivers to a destination, beside the raw
send rate of the same transport in the same run (the same bytes, sent without reading events,
encoding or moving the position).

    .venv/bin/python bench/streams.py [--events 20000] [--batch 500]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/auditlog_streams_bench  (the default)

The database is dropped and created afresh. Receivers run in this process (threads) on
loopback and throw what they read away; the result table goes to bench/streams-results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import fresh_database, setup_django  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/auditlog_streams_bench"


@contextmanager
def http_sink() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_sink(context: ssl.SSLContext) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def read(connection: socket.socket) -> None:
        try:
            with context.wrap_socket(connection, server_side=True) as stream:
                while stream.recv(1 << 16):
                    pass
        except (OSError, ssl.SSLError):
            pass

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=read, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def sign(destination: Any) -> None:
    """Give the destination a signing key, as a production one would have."""
    from streams import services

    services.set_secrets(destination, auth_header_value=None, signing_key="bench-signing-key")
    destination.save()


def load(count: int) -> None:
    from auditlog.chain.sealing import seal_pending
    from auditlog.services import record_events

    for start in range(0, count, 5000):
        record_events(
            [
                {
                    "action": "login",
                    "app": "bench",
                    "context": {"username": f"user{n % 500}", "auth_method": "password"},
                    "client_ip": f"10.0.{n % 250}.{n % 200}",
                }
                for n in range(start, min(start + 5000, count))
            ]
        )
    seal_pending(batch_size=5000)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


REPEAT = 3


def best_of(count: int, measure: Callable[[], float]) -> float:
    """The median of ``count`` runs (the machine is shared: one run is noisy)."""
    return sorted(measure() for _ in range(count))[count // 2]


def stream_rate(destination: Any) -> float:
    """Events per second of delivery runs from the start of the chain to its end."""
    from streams import services

    services.replay(destination, from_position=1)
    sent = 0

    def run() -> None:
        nonlocal sent
        while True:
            result = services.deliver(destination.pk, budget=3600)
            sent += result.sent
            if result.error:
                raise RuntimeError(result.error)
            if not result.more:
                return

    seconds = timed(run)
    return sent / seconds


def prepared_batches(destination: Any) -> list[list[Any]]:
    """The batches a run sends, encoded up front (for the raw rate)."""
    from auditlog.positions import events_after
    from streams import services
    from streams.formats import get_format
    from streams.transports import Outgoing

    fmt = get_format(destination.format)
    batches: list[list[Any]] = []
    position, last = 0, None
    while True:
        page = events_after(services.matching_events(destination), position, destination.batch_size)
        if not page.items:
            return batches
        destination.last_sent_sequence = last
        records = services._records(destination, page)
        batches.append([Outgoing(r, fmt.encode(r)) for r in records])
        position, last = page.next_position, records[-1].sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    fresh_database(url)
    data_dir = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    setup_django(url, data_dir)

    from streams.formats import get_format
    from streams.models import Destination, Transport
    from streams.transports import HttpSender, SyslogSender, syslog_frame
    from tests.streams.receivers import make_test_ca

    print(f"Loading {args.events:,} events...", flush=True)
    load(args.events)
    ca = make_test_ca(data_dir)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(ca.server_cert, ca.server_key)
    rows = []

    with http_sink() as sink_url:
        destination = Destination.objects.create(
            name="bench-http", transport=Transport.HTTP, url=sink_url, batch_size=args.batch
        )
        sign(destination)
        stream = best_of(REPEAT, lambda: stream_rate(destination))
        sender = HttpSender(destination, get_format(destination.format))
        bodies = [sender.body(batch) for batch in prepared_batches(destination)]

        def raw_http() -> None:
            for body in bodies:
                request = urllib.request.Request(sink_url, data=body, method="POST")  # noqa: S310
                request.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(request) as response:  # noqa: S310
                    response.read()

        raw = best_of(REPEAT, lambda: args.events / timed(raw_http))
        rows.append(("HTTP batches (JSON array)", stream, raw))

    with tls_sink(server_context) as port:
        destination = Destination.objects.create(
            name="bench-tls",
            transport=Transport.SYSLOG_TLS,
            host="127.0.0.1",
            port=port,
            ca_file=str(ca.ca_file),
            batch_size=args.batch,
        )
        sign(destination)
        stream = best_of(REPEAT, lambda: stream_rate(destination))
        hostname = SyslogSender(destination, None).hostname  # type: ignore[arg-type]
        payloads = [
            b"".join(syslog_frame(item, hostname) for item in batch)
            for batch in prepared_batches(destination)
        ]
        client = ssl.create_default_context(cafile=str(ca.ca_file))

        def raw_tls() -> None:
            for payload in payloads:
                with (
                    socket.create_connection(("127.0.0.1", port)) as raw_socket,
                    client.wrap_socket(raw_socket, server_hostname="127.0.0.1") as stream,
                ):
                    stream.sendall(payload)

        raw = best_of(REPEAT, lambda: args.events / timed(raw_tls))
        rows.append(("Syslog RFC 5424 over TLS", stream, raw))

    table = [
        "# Streams to SIEMs: delivery rate per worker",
        "",
        f"{args.events:,} events, batches of {args.batch}, signed, one worker (this process), "
        f"median of {REPEAT} runs, "
        f"receivers on loopback; {datetime.now(UTC):%Y-%m-%d}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, PostgreSQL.",
        "",
        "| Transport | Stream (events/s) | Raw send of the same bytes (events/s) | Ratio |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {ours:,.0f} | {raw:,.0f} | {ours / raw:.0%} |" for name, ours, raw in rows],
        "",
        "The stream's rate includes reading events in chain order, the filter, encoding, "
        "signing and moving the position after each accepted batch; the raw rate only sends "
        "pre-built bodies over the same transport (a new connection per batch in both).",
    ]
    text = "\n".join(table) + "\n"
    print(text)
    (REPO / "bench" / "streams-results.md").write_text(text)


if __name__ == "__main__":
    main()
