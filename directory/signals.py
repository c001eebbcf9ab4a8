"""Keep the brand cache honest."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from directory.brands import forget_brands
from directory.models import Brand


@receiver([post_save, post_delete], sender=Brand, dispatch_uid="directory.forget_brands")
def _forget_brands(**_: Any) -> None:
    forget_brands()
