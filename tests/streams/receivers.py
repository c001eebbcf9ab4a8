"""Real local receivers for stream tests: an HTTP server (which can answer 503 for a while, or
hold a batch before answering), and a syslog server over TCP or TLS that parses RFC 5425's
octet-counted frames; and a test certificate authority made with ``cryptography``."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class HttpReceiver:
    url: str = ""
    status: int = 200
    hold: float = 0.0  # seconds to wait before answering (a worker can be killed meanwhile)
    # Requests (1-based) accepted at once but answered only on ``release`` (or 2 minutes).
    hold_after_accepting: set[int] = field(default_factory=set)
    requests: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def records(self) -> list[dict[str, Any]]:
        """Every record accepted with a 2xx, in arrival order (JSON-array bodies)."""
        return [record for body in self.bodies for record in json.loads(body)]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests += 1
            receiver.arrived.set()
            if receiver.requests in receiver.hold_after_accepting:
                receiver.bodies.append(body)
                receiver.headers.append(dict(self.headers))
                receiver.release.wait(120)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if receiver.hold:
                time.sleep(receiver.hold)
            status = receiver.status
            if 200 <= status < 300:
                receiver.bodies.append(body)
                receiver.headers.append(dict(self.headers))
                answer = b'{"text":"Success","code":0}'
            else:
                answer = b"Service Unavailable: the index is read-only, try again later"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/ingest"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


FRAME = re.compile(rb"(\d+) ")


@dataclass
class SyslogReceiver:
    port: int = 0
    messages: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The JSON after the BOM of each RFC 5424 message."""
        return [json.loads(m.split(b"\xef\xbb\xbf", 1)[1]) for m in self.messages]


def _read_frames(stream: socket.socket, receiver: SyslogReceiver) -> None:
    buffer = b""
    while chunk := stream.recv(65536):
        buffer += chunk
        while (match := FRAME.match(buffer)) and len(buffer) >= match.end() + int(match[1]):
            end = match.end() + int(match[1])
            receiver.messages.append(buffer[match.end() : end])
            buffer = buffer[end:]
    if buffer:
        receiver.errors.append(f"partial frame: {buffer[:80]!r}")


@contextmanager
def syslog_receiver(tls: ssl.SSLContext | None = None) -> Iterator[SyslogReceiver]:
    receiver = SyslogReceiver()
    listener = socket.create_server(("127.0.0.1", 0))
    receiver.port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                connection.settimeout(10)
                stream = tls.wrap_socket(connection, server_side=True) if tls else connection
                _read_frames(stream, receiver)
            except (OSError, ssl.SSLError) as exc:
                receiver.errors.append(str(exc))
            finally:
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@dataclass
class TestCA:
    ca_file: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def make_test_ca(directory: Path) -> TestCA:
    """A CA and a server certificate for 127.0.0.1 / localhost, valid for a day."""
    now = datetime.now(UTC)

    def build(subject: str, issuer: x509.Name | None, key: Any, signer: Any, ca: bool) -> Any:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("Test stream CA", None, ca_key, ca_key, True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = build("localhost", ca_cert.subject, server_key, ca_key, False)
    paths = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
