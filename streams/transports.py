"""How a batch of encoded records reaches a destination. ``send`` returns once the receiver
accepted the whole batch, or raises :class:`DeliveryFailed` with the receiver's own words
(HTTP status and body excerpt, TLS handshake error, refused connection); the caller then
keeps its position and retries the same batch later.

For syslog over TCP/TLS "accepted" means every frame was written and the connection closed
without an error (RFC 5425 has no application acknowledgement); for a file, written and fsynced.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from auditlog.sanitize import mask_string
from streams import secrets
from streams.formats import Format, StreamRecord
from streams.models import Destination, HttpShape, Transport, tls_context

EXCERPT = 300
# RFC 5424: facility 10 (security/authorization, private), severity 6 (informational).
SYSLOG_PRI = 10 * 8 + 6
SD_ID = "chain@32473"  # 32473: the private enterprise number reserved for examples (RFC 5612)


class DeliveryFailed(Exception):
    """The receiver did not accept the batch; the message is what it said."""


@dataclass(frozen=True)
class Outgoing:
    """One record as encoded by the destination's format (``line``), with its record."""

    record: StreamRecord
    line: str


class Sender(Protocol):
    def __init__(self, destination: Destination, fmt: Format) -> None: ...

    def send(self, batch: Sequence[Outgoing]) -> None: ...


def _excerpt(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return mask_string(text[:EXCERPT] + ("…" if len(text) > EXCERPT else ""))


class HttpSender:
    def __init__(self, destination: Destination, fmt: Format) -> None:
        self.destination = destination
        self.fmt = fmt
        self.json_lines = fmt.content_type == "application/json"

    def body(self, batch: Sequence[Outgoing]) -> bytes:
        if self.destination.http_shape == HttpShape.SPLUNK_HEC:
            # HEC takes concatenated event objects; "time" is the event's, in epoch seconds.
            return "\n".join(self._hec(item) for item in batch).encode()
        items = [item.line if self.json_lines else json.dumps(item.line) for item in batch]
        return ("[" + ",".join(items) + "]").encode()

    def _hec(self, item: Outgoing) -> str:
        created = item.record.event.get("created")
        epoch = datetime.fromisoformat(created).timestamp() if created else None
        event = item.line if self.json_lines else json.dumps(item.line)
        return (
            f'{{"time":{json.dumps(epoch)},"source":"auditlog","sourcetype":"_json",'
            f'"event":{event}}}'
        )

    def send(self, batch: Sequence[Outgoing]) -> None:
        destination = self.destination
        request = urllib.request.Request(  # noqa: S310 (validated: http(s) only)
            destination.url, data=self.body(batch), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", "auditlog-streams")
        if destination.auth_header_value and destination.auth_header_name:
            request.add_header(
                destination.auth_header_name, secrets.decrypt(destination.auth_header_value)
            )
        context = None
        if destination.url.startswith("https:"):
            context = tls_context(
                ca_file=destination.ca_file,
                client_cert=destination.client_cert,
                client_key=destination.client_key,
                verify=destination.verify_tls,
            )
        try:
            with urllib.request.urlopen(  # noqa: S310 (the URL is validated: http(s) only)
                request, timeout=settings.STREAMS_TIMEOUT, context=context
            ) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}: {_excerpt(exc.read())}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(mask_string(f"{destination.url}: {reason}")) from None


def syslog_frame(item: Outgoing, hostname: str) -> bytes:
    """One RFC 5424 message, octet-counted (RFC 5425/6587): ``LEN SP MSG``."""
    record = item.record
    created = record.event.get("created")
    when = datetime.fromisoformat(created) if created else datetime.now(UTC)
    timestamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    msgid = "".join(c for c in record.event.get("action", "-") if 33 <= ord(c) <= 126)[:32]
    previous = "" if record.previous_sequence is None else str(record.previous_sequence)
    structured = (
        f'[{SD_ID} sequence="{record.sequence}" hash="{record.chain_hash}" '
        f'prev_hash="{record.prev_hash}" previous_sequence="{previous}"]'
    )
    message = (
        (f"<{SYSLOG_PRI}>1 {timestamp} {hostname} auditlog - {msgid or '-'} {structured} ").encode()
        + b"\xef\xbb\xbf"
        + item.line.encode()
    )
    return str(len(message)).encode() + b" " + message


class SyslogSender:
    def __init__(self, destination: Destination, fmt: Format) -> None:
        self.destination = destination
        self.hostname = settings.STREAMS_SYSLOG_HOSTNAME or socket.gethostname() or "-"

    def send(self, batch: Sequence[Outgoing]) -> None:
        destination = self.destination
        where = f"{destination.host}:{destination.port}"
        payload = b"".join(syslog_frame(item, self.hostname) for item in batch)
        try:
            raw = socket.create_connection(
                (destination.host, destination.port or 0), timeout=settings.STREAMS_TIMEOUT
            )
        except OSError as exc:
            raise DeliveryFailed(f"{where}: {exc.strerror or exc}") from None
        try:
            stream: socket.socket = raw
            if destination.transport == Transport.SYSLOG_TLS:
                context = tls_context(
                    ca_file=destination.ca_file,
                    client_cert=destination.client_cert,
                    client_key=destination.client_key,
                    verify=destination.verify_tls,
                )
                stream = context.wrap_socket(raw, server_hostname=destination.host)
            stream.sendall(payload)
            stream.close()
        except ssl.SSLError as exc:
            raise DeliveryFailed(f"{where}: TLS: {exc.reason or exc}") from None
        except OSError as exc:
            raise DeliveryFailed(f"{where}: {exc.strerror or exc}") from None
        finally:
            raw.close()


class FileSender:
    def __init__(self, destination: Destination, fmt: Format) -> None:
        self.destination = destination

    def send(self, batch: Sequence[Outgoing]) -> None:
        path = self.destination.file_path
        data = "".join(item.line + "\n" for item in batch).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size if path.exists() else 0
            if size and size + len(data) > self.destination.max_bytes:
                self._rotate(path)
            with path.open("ab") as sink:
                sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            raise DeliveryFailed(f"{path}: {exc.strerror or exc}") from None

    def _rotate(self, path: Path) -> None:
        """``name.jsonl`` becomes ``name.jsonl.1``, ``.1`` becomes ``.2``, and so on; the
        oldest beyond ``backups`` is removed (as logging's RotatingFileHandler does)."""
        backups = self.destination.backups
        if backups == 0:
            path.unlink()
            return
        for index in range(backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))


class StorageSender:
    """One object per batch, named by its first and last sequence, through Django's storage
    API (``STORAGES[storage_alias]``: django-storages' S3 backend for S3-compatible stores).
    A batch sent again after a crash is saved beside the first copy (the storage picks a free
    name), never over it."""

    def __init__(self, destination: Destination, fmt: Format) -> None:
        self.destination = destination

    def send(self, batch: Sequence[Outgoing]) -> None:
        destination = self.destination
        first, last = batch[0].record.sequence, batch[-1].record.sequence
        name = f"{destination.prefix}{first:012d}-{last:012d}.jsonl"
        data = "".join(item.line + "\n" for item in batch).encode()
        try:
            storages[destination.storage_alias].save(name, ContentFile(data))
        except Exception as exc:  # each backend raises its own (OSError, botocore's...)
            raise DeliveryFailed(
                mask_string(f"storage {destination.storage_alias}: {exc}")
            ) from None


SENDERS: dict[str, type[Sender]] = {
    Transport.HTTP: HttpSender,
    Transport.SYSLOG_TCP: SyslogSender,
    Transport.SYSLOG_TLS: SyslogSender,
    Transport.FILE: FileSender,
    Transport.STORAGE: StorageSender,
}


def sender_for(destination: Destination, fmt: Format) -> Sender:
    return SENDERS[destination.transport](destination, fmt)
