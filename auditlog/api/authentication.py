"""``Authorization: Bearer <key>`` with API tokens, answering with authentik's messages."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from directory.models import Token, TokenIntent

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
        token = (
            Token.objects.valid()
            .filter(key=key, intent=TokenIntent.API)
            .select_related("user")
            .first()
        )
        if token is None:
            raise AuthenticationFailed(MSG_INVALID)
        return token.user, token

    # No WWW-Authenticate challenge: like authentik, refusals are 403, not 401.
    def authenticate_header(self, request: Request) -> None:
        return None
