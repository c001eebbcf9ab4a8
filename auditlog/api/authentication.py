"""``Authorization: Bearer <key>`` with API tokens, answering with authentik's messages."""

from __future__ import annotations

from typing import Any

import structlog
from django.db.models import Exists, OuterRef
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from directory.models import Group, Token, TokenIntent

MSG_UNSUPPORTED = "Unsupported authentication type"
MSG_MALFORMED = "Malformed header"
MSG_INVALID = "Token invalid/expired"


class BearerTokenAuthentication(BaseAuthentication):
    """Only tokens with intent ``api``, not expired, of an active user, authenticate."""

    def authenticate(self, request: Request) -> tuple[Any, Token] | None:
        header = get_authorization_header(request)
        if not header or not header.strip():
            return None
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed(MSG_MALFORMED) from None
        scheme, _, key = text.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationFailed(MSG_UNSUPPORTED)
        key = key.strip()
        if not key or " " in key:
            raise AuthenticationFailed(MSG_MALFORMED)
        # One query: the token, its user, and whether that user is a superuser (which every
        # permission check asks first).
        found = list(
            Token.objects.valid()
            .filter(key=key, intent=TokenIntent.API)
            .select_related("user")
            .annotate(
                user_is_superuser=Exists(
                    Group.objects.filter(users=OuterRef("user_id"), is_superuser=True)
                )
            )[:1]
        )
        if not found:
            raise AuthenticationFailed(MSG_INVALID)
        token = found[0]
        token.user.__dict__["_is_superuser"] = getattr(token, "user_is_superuser", None)
        # The request's log lines from here on name who asked (the session's are bound by
        # the request logging middleware already).
        structlog.contextvars.bind_contextvars(
            user_id=token.user.pk, username=token.user.get_username()
        )
        return token.user, token

    # No WWW-Authenticate challenge: like authentik, refusals are 403, not 401.
    def authenticate_header(self, request: Request) -> None:
        return None
