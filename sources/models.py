"""Other systems whose events this log imports: authentik instances, pulled through their
events API and pushed to by their notification webhook transport."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.utils import timezone

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class AuthentikSource(models.Model):
    """One authentik instance: how to reach it, and how far its events have been imported.

    ``token`` holds the API token encrypted (:mod:`sources.secrets`); ``webhook_token_digest``
    the SHA-256 of the token its webhook transport sends. The sync fields change only through
    :mod:`sources.services`, page by page, in the transaction that stores the page.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "Lower-case letters, digits, '-' and '_' only.")],
        help_text="A short name; imported events carry it in context.imported.source.",
    )
    url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="The authentik instance, e.g. https://auth.example.com",
    )
    token = models.TextField(help_text="The API token, encrypted.")
    webhook_token_digest = models.CharField(max_length=64, blank=True, default="")
    enabled = models.BooleanField(default=True, help_text="Followed on the schedule.")
    page_size = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    verify_tls = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    # Where the pull stands (committed with each page's events).
    position = models.DateTimeField(
        null=True, blank=True, help_text="The newest `created` imported by the pull."
    )
    events_imported = models.PositiveBigIntegerField(default=0)
    events_skipped = models.PositiveBigIntegerField(default=0)
    events_pushed = models.PositiveBigIntegerField(default=0)
    last_sync_started = models.DateTimeField(null=True, blank=True)
    last_sync_finished = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_push = models.DateTimeField(null=True, blank=True)
    last_skip = models.TextField(blank=True, default="")
    sync_lease_until = models.DateTimeField(null=True, blank=True)
    sync_holder = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["name"]
        verbose_name = "authentik source"

    def __str__(self) -> str:
        return self.name

    @property
    def lag(self) -> timedelta | None:
        """How stale the imported copy may be: the time since a sync last read to the end
        (``None`` before the first). A failing source's lag keeps growing."""
        if self.last_success is None:
            return None
        return max(timezone.now() - self.last_success, timedelta(0))

    @property
    def healthy(self) -> bool:
        return not self.last_error
