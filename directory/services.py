"""Writes with consequences in the directory."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from directory.models import Token, TokenIntent, User


def create_api_token(
    *,
    user: User,
    identifier: str | None = None,
    expires_in: timedelta | None = timedelta(days=365),
    description: str = "",
) -> Token:
    """Create an API token for ``user``; ``expires_in=None`` makes it never expire."""
    if not identifier:
        stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
        identifier = slugify(f"{user.username}-api-{stamp}")
    with transaction.atomic():
        return Token.objects.create(
            user=user,
            identifier=identifier,
            intent=TokenIntent.API,
            description=description,
            expiring=expires_in is not None,
            expires=timezone.now() + expires_in if expires_in is not None else None,
        )
