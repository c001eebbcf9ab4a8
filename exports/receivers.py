"""Deleting an export deletes its file, however the row is deleted (API, admin, cascades)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete

from exports.files import forget_file
from exports.models import DataExport


def _delete_file(sender: Any, instance: DataExport, using: str, **_: Any) -> None:
    if instance.file:
        # Only once the deletion is committed: a rolled-back delete keeps its file.
        transaction.on_commit(
            partial(forget_file, instance.file.storage, instance.file.name), using=using
        )


def connect() -> None:
    post_delete.connect(_delete_file, sender=DataExport, dispatch_uid="exports.delete_file")
