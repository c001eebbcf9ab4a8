"""Data exports: a background CSV or JSONL file of a filtered event or user list."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.text import capfirst

# The models that can be exported ("app_label.model_name").
SUPPORTED_MODELS = ("auditlog.event", "directory.user")
ADD_PERMISSION = "exports.add_dataexport"
VIEW_PERMISSION = "exports.view_dataexport"
DELETE_PERMISSION = "exports.delete_dataexport"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"


class ExportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def supported_content_types() -> list[ContentType]:
    return [ContentType.objects.get_by_natural_key(*label.split(".")) for label in SUPPORTED_MODELS]


def view_permission_of(content_type: ContentType) -> str:
    """The permission a user needs to read the exported model (``auditlog.view_event``)."""
    return f"{content_type.app_label}.view_{content_type.model}"


class DataExportQuerySet(models.QuerySet["DataExport"]):
    def visible_to(self, user: Any) -> DataExportQuerySet:
        """The user's own exports, or all with ``exports.view_dataexport``; in both cases only
        of the models the user may currently view (losing ``view_user`` hides user exports)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        readable = [
            ct.pk for ct in supported_content_types() if user.has_perm(view_permission_of(ct))
        ]
        visible = self.filter(content_type_id__in=readable)
        if not user.has_perm(VIEW_PERMISSION):
            visible = visible.filter(requested_by=user)
        return visible

    def downloadable(self) -> DataExportQuerySet:
        """Finished exports that have a file (never a queued, running or failed one)."""
        return self.filter(status=ExportStatus.COMPLETED, completed=True).exclude(
            Q(file="") | Q(file__isnull=True)
        )


class DataExport(models.Model):
    """One export request and, once built, its file (private: only downloaded through views
    that check the same permissions as the API)."""

    id = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="data_exports",
    )
    requested_on = models.DateTimeField(auto_now_add=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    # The list request's query parameters: one value per key, or a list for a key that was
    # repeated (``actions=login&actions=logout``), so multi-value filters are honoured.
    query_params = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to="exports/", blank=True, max_length=255)
    completed = models.BooleanField(default=False)
    format = models.CharField(max_length=8, choices=ExportFormat.choices, default=ExportFormat.CSV)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    error = models.TextField(blank=True, help_text="Why the export failed.")
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    started_on = models.DateTimeField(null=True, blank=True)
    finished_on = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Refreshed every few seconds while a build runs, so a build whose worker died is noticed.
    heartbeat = models.DateTimeField(null=True, blank=True)

    objects = DataExportQuerySet.as_manager()

    class Meta:
        verbose_name = "data export"
        verbose_name_plural = "data exports"
        ordering = ["-requested_on"]
        indexes = [models.Index(fields=["requested_by", "-requested_on"])]

    def __str__(self) -> str:
        return f"{capfirst(self.model_verbose_name)} export {self.id}"

    @property
    def model_verbose_name(self) -> str:
        model = self.content_type.model_class()
        return str(model._meta.verbose_name) if model is not None else self.content_type.model

    @property
    def data_type(self) -> str:
        """What was exported, as the Data Exports page names it ("Events", "Users")."""
        model = self.content_type.model_class()
        plural = model._meta.verbose_name_plural if model is not None else self.content_type.model
        return capfirst(str(plural))

    @property
    def is_ready(self) -> bool:
        return self.status == ExportStatus.COMPLETED and self.completed and bool(self.file)

    @property
    def download_url(self) -> str:
        """The download URL (there is no public URL of the file): a browser's session and an
        API client's Bearer token both download there, with the API's permission checks."""
        return reverse("exports:download", kwargs={"pk": self.pk})

    @property
    def filename(self) -> str:
        return PurePosixPath(self.file.name).name if self.file else ""
