"""Deleting an export deletes its file, however the row is deleted (API, admin, cascades)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete


def _delete_file(sender: Any, instance: Any, using: str, **_: Any) -> None:
    from exports.services import forget_file

    if instance.file:
        # Only once the deletion is committed: a rolled-back delete keeps its file.
        transaction.on_commit(
            partial(forget_file, instance.file.storage, instance.file.name), using=using
        )


def connect() -> None:
    from exports.models import DataExport

    post_delete.connect(_delete_file, sender=DataExport, dispatch_uid="exports.delete_file")
