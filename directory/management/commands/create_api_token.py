"""Create an API token for a user and print only its key (for scripts and SIEM set-up)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from auditlog.context import acting_user
from directory.models import Token
from directory.services import create_api_token


class Command(BaseCommand):
    help = "Create an API token (intent api) for USERNAME and print its key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--identifier", help="A unique slug naming the token.")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=365,
            help="Days until the token expires (default 365); 0 means it never expires.",
        )

    def handle(
        self, *args: Any, username: str, identifier: str | None, expires_days: int, **options: Any
    ) -> None:
        if expires_days < 0:
            raise CommandError("--expires-days must be 0 (never) or a positive number of days.")
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"User {username!r} does not exist.") from None
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; its tokens would not work.")
        if identifier and Token.objects.filter(identifier=identifier).exists():
            raise CommandError(f"A token with the identifier {identifier!r} already exists.")
        try:
            with acting_user(user):
                token = create_api_token(
                    user=user,
                    identifier=identifier,
                    expires_in=timedelta(days=expires_days) if expires_days else None,
                    description="Created with manage.py create_api_token",
                )
        except IntegrityError as exc:
            raise CommandError(f"Could not create the token: {exc}") from None
        self.stdout.write(token.key)
