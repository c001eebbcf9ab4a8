"""Stream credentials at rest: the HTTP authentication header and the signing key are stored
encrypted (Fernet) under ``STREAMS_SECRET_KEY`` (else a key derived from ``SECRET_KEY``) and
never shown again after they are saved."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(ValueError):
    """The stored secret cannot be decrypted (the key changed): enter it again."""


def _fernet() -> Fernet:
    material = settings.STREAMS_SECRET_KEY or f"streams-secret:{settings.SECRET_KEY}"
    digest = hashlib.sha256(material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(value: str) -> str:
    if not value:
        return ""
    try:
        return _fernet().decrypt(value.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(
            "A stored stream secret cannot be decrypted (STREAMS_SECRET_KEY or SECRET_KEY "
            "changed); enter it again."
        ) from None
