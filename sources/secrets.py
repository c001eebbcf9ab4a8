"""The sources' credentials at rest: the authentik API token is stored encrypted (Fernet,
AES-128-CBC with HMAC-SHA256) under ``SOURCES_SECRET_KEY`` (else a key derived from
``SECRET_KEY``), and the webhook token only as its SHA-256 digest. Neither is ever shown
again after it is saved."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

WEBHOOK_TOKEN_BYTES = 32


class SecretUnreadable(ValueError):
    """The stored token cannot be decrypted (the key changed): enter the token again."""


def _fernet() -> Fernet:
    material = settings.SOURCES_SECRET_KEY or f"sources-token:{settings.SECRET_KEY}"
    digest = hashlib.sha256(material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return _fernet().decrypt(value.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "The stored API token cannot be decrypted (SOURCES_SECRET_KEY or SECRET_KEY "
            "changed); enter the token again."
        ) from None


def new_webhook_token() -> str:
    return secrets.token_urlsafe(WEBHOOK_TOKEN_BYTES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Whether ``token`` is the one whose digest is stored (constant time)."""
    return bool(stored_digest) and hmac.compare_digest(digest(token), stored_digest)
