"""Destinations of SIEM streams: where events go, in which format and through which transport,
and how far each destination has received the chain.

Configuration is validated when saved (:meth:`Destination.clean`, one message per field);
what only fails at delivery shows on the destination's health (``last_error``). The delivery
fields change only through :mod:`streams.services`, under the destination's lease.
"""

from __future__ import annotations

import ssl
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.utils import timezone

from auditlog.search import EventSearchSchema, SearchError, compile_query
from streams.formats import FORMATS

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MAX_BATCH_SIZE = 5000


class Transport(models.TextChoices):
    HTTP = "http", "HTTPS POST of batches"
    SYSLOG_TCP = "syslog_tcp", "Syslog (RFC 5424) over TCP"
    SYSLOG_TLS = "syslog_tls", "Syslog (RFC 5424) over TLS (RFC 5425)"
    FILE = "file", "Local JSON-lines file (rotated)"
    STORAGE = "storage", "Object storage (Django storage: S3-compatible, file system)"


class HttpShape(models.TextChoices):
    JSON_ARRAY = "json", "JSON array of records"
    SPLUNK_HEC = "splunk_hec", "Splunk HTTP Event Collector"


def validate_filter(value: str) -> None:
    """A destination's filter is an event search (DjangoQL) that parses, or empty."""
    if not value.strip():
        return
    try:
        compile_query(value, EventSearchSchema)
    except SearchError as exc:
        raise ValidationError(f"The filter does not parse: {exc}") from None


def validate_format(value: str) -> None:
    if value not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ValidationError(f'Unknown format "{value}": use one of {known}.')


def _readable_file(value: str, what: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise ValidationError(f"The {what} must be an absolute path.")
    if not path.is_file():
        raise ValidationError(f"The {what} {value} does not exist or is not a file.")
    return path


def tls_context(*, ca_file: str, client_cert: str, client_key: str, verify: bool) -> ssl.SSLContext:
    """The client TLS context of a destination; ``ssl.SSLError``/``OSError`` when a file does
    not load."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if client_cert:
        context.load_cert_chain(client_cert, client_key or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


CONFIGURATION_FIELDS = [
    "name",
    "paused",
    "filter",
    "format",
    "transport",
    "batch_size",
    "url",
    "http_shape",
    "auth_header_name",
    "auth_header_value",
    "host",
    "port",
    "ca_file",
    "client_cert",
    "client_key",
    "verify_tls",
    "path",
    "max_bytes",
    "backups",
    "storage_alias",
    "object_prefix",
    "signing_key",
]
# Stored encrypted, written only (never shown back): the API and the form handle them apart.
SECRET_FIELDS = ("auth_header_value", "signing_key")


class Destination(models.Model):
    """One SIEM (or log shipper) that receives the events matching ``filter``, in chain order.

    ``position`` is the last chain sequence looked at for this destination (sent, or filtered
    out); ``last_sent_sequence`` the sequence of the last record sent, which the next record
    names as its ``previous_sequence``. Both move only after the receiver accepted a batch.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "Lower-case letters, digits, '-' and '_' only.")],
    )
    paused = models.BooleanField(default=False, help_text="A paused destination sends nothing.")
    filter = models.TextField(
        blank=True,
        default="",
        validators=[validate_filter],
        help_text='An event search, e.g. action = "login_failed"; empty: every event.',
    )
    format = models.CharField(max_length=40, default="api", validators=[validate_format])
    transport = models.CharField(max_length=20, choices=Transport.choices)
    batch_size = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(MAX_BATCH_SIZE)]
    )

    # HTTPS POST
    url = models.CharField(max_length=500, blank=True, default="")
    http_shape = models.CharField(
        max_length=20, choices=HttpShape.choices, default=HttpShape.JSON_ARRAY
    )
    auth_header_name = models.CharField(max_length=100, blank=True, default="Authorization")
    auth_header_value = models.TextField(blank=True, default="", help_text="Encrypted.")
    # Syslog
    host = models.CharField(max_length=255, blank=True, default="")
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    ca_file = models.CharField(max_length=500, blank=True, default="")
    client_cert = models.CharField(max_length=500, blank=True, default="")
    client_key = models.CharField(max_length=500, blank=True, default="")
    verify_tls = models.BooleanField(default=True)
    # File
    path = models.CharField(
        max_length=500, blank=True, default="", help_text="Empty: DATA_DIR/streams/<name>.jsonl"
    )
    max_bytes = models.PositiveBigIntegerField(
        default=100 * 1024 * 1024, validators=[MinValueValidator(1024)]
    )
    backups = models.PositiveIntegerField(default=5, validators=[MaxValueValidator(1000)])
    # Object storage (a Django storage alias of STORAGES; one object per batch)
    storage_alias = models.CharField(max_length=100, blank=True, default="default")
    object_prefix = models.CharField(
        max_length=300, blank=True, default="", help_text="Empty: streams/<name>/"
    )
    # HMAC-SHA256 key that signs each JSON record (encrypted; empty: records are not signed).
    signing_key = models.TextField(blank=True, default="", help_text="Encrypted.")

    created = models.DateTimeField(default=timezone.now, editable=False)

    # Delivery state (streams.services only).
    position = models.BigIntegerField(default=0)
    last_sent_sequence = models.BigIntegerField(null=True, blank=True)
    events_sent = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="Failures in a row.")
    retry_at = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    failure_reported = models.BooleanField(default=False)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_holder = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save_configuration(self) -> None:
        """Save what a person configures, never the delivery state: a worker may have moved
        the position since this instance was read."""
        if self._state.adding:
            self.save()
        else:
            self.save(update_fields=CONFIGURATION_FIELDS)

    @property
    def file_path(self) -> Path:
        if self.path:
            return Path(self.path)
        return Path(settings.DATA_DIR) / "streams" / f"{self.name}.jsonl"

    @property
    def prefix(self) -> str:
        prefix = self.object_prefix or f"streams/{self.name}/"
        return prefix if prefix.endswith("/") else prefix + "/"

    @property
    def healthy(self) -> bool:
        return not self.last_error

    @property
    def failing_for(self) -> timedelta | None:
        if self.failing_since is None:
            return None
        return max(timezone.now() - self.failing_since, timedelta(0))

    def clean(self) -> None:
        """Per-field messages for what a transport needs (the field validators ran before)."""
        errors: dict[str, Any] = {}
        if self.transport == Transport.HTTP:
            errors.update(self._http_problems())
        elif self.transport in (Transport.SYSLOG_TCP, Transport.SYSLOG_TLS):
            errors.update(self._syslog_problems())
        elif self.transport == Transport.FILE:
            errors.update(self._file_problems())
        elif self.transport == Transport.STORAGE and self.storage_alias not in settings.STORAGES:
            known = ", ".join(sorted(settings.STORAGES))
            errors["storage_alias"] = (
                f'No storage "{self.storage_alias}" in STORAGES: use one of {known}.'
            )
        if errors:
            raise ValidationError(errors)

    def _http_problems(self) -> dict[str, str]:
        if not self.url:
            return {"url": "An HTTP destination needs the receiver's URL."}
        try:
            URLValidator(schemes=["http", "https"])(self.url)
        except ValidationError:
            return {"url": f"{self.url!r} is not a valid http:// or https:// URL."}
        if "@" in urlsplit(self.url).netloc:
            return {
                "url": "Put credentials in the authentication header (stored encrypted), "
                "not in the URL."
            }
        return {}

    def _syslog_problems(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not self.host:
            problems["host"] = "A syslog destination needs the receiver's host name."
        if not self.port:
            problems["port"] = "A syslog destination needs the receiver's port."
        if self.transport != Transport.SYSLOG_TLS:
            return problems
        for field, what in (
            ("ca_file", "CA file"),
            ("client_cert", "client certificate"),
            ("client_key", "client key"),
        ):
            if value := getattr(self, field):
                try:
                    _readable_file(value, what)
                except ValidationError as exc:
                    problems[field] = exc.messages[0]
        if self.client_key and not self.client_cert:
            problems["client_cert"] = "A client key needs its client certificate."
        if problems:
            return problems
        try:
            ssl.create_default_context(cafile=self.ca_file or None)
        except (ssl.SSLError, OSError) as exc:
            problems["ca_file"] = f"The CA file does not load: {exc}"
        if self.client_cert:
            try:
                ssl.create_default_context().load_cert_chain(
                    self.client_cert, self.client_key or None
                )
            except (ssl.SSLError, OSError) as exc:
                problems["client_cert"] = f"The client certificate does not load: {exc}"
        return problems

    def _file_problems(self) -> dict[str, str]:
        if self.path and not Path(self.path).is_absolute():
            return {"path": "The file path must be absolute (or empty for the data directory)."}
        target = self.file_path.resolve()
        roots = [Path(root).resolve() for root in settings.STREAMS_FILE_ROOTS]
        if not any(target.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(root) for root in roots)
            return {"path": f"The file must be under {allowed} (STREAMS_FILE_ROOTS)."}
        parent = self.file_path.parent
        if parent.exists() and not parent.is_dir():
            return {"path": f"{parent} is not a directory."}
        return {}
