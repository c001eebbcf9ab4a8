"""Signatures: the key (never in the database), its fingerprint, and the signed checkpoint
and prune records that anchor the chain against a rewrite by someone without the key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auditlog.chain.canonical import canonical_json, iso_utc
from auditlog.chain.links import highest, last_link, try_lock
from auditlog.models import ChainCheckpoint, ChainRecordKind

_KEY_CONTEXT = b"auditlog.chain.checkpoint-key"
_KEY_ID_CONTEXT = b"auditlog.chain.key-id"


def chain_key() -> bytes:
    """``AUDIT_CHAIN_KEY``, else a key derived from ``SECRET_KEY``. A separate key kept off
    the database server is stronger: whoever holds the key can sign a rewritten history."""
    if settings.AUDIT_CHAIN_KEY:
        return str(settings.AUDIT_CHAIN_KEY).encode()
    return hmac.new(str(settings.SECRET_KEY).encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def key_id(key: bytes | None = None) -> str:
    """A fingerprint naming the key (it reveals nothing about it)."""
    key = chain_key() if key is None else key
    return hmac.new(key, _KEY_ID_CONTEXT, hashlib.sha256).hexdigest()[:16]


class CheckpointRecord(TypedDict):
    """A checkpoint or prune record as the API and ``export_checkpoints`` give it."""

    kind: str
    sequence: int
    chain_hash: str
    created: str
    first_sequence: int | None
    last_sequence: int | None
    first_prev: str | None
    last_hash: str | None
    count: int | None
    signature: str
    key_id: str


def checkpoint_record(checkpoint: ChainCheckpoint) -> CheckpointRecord:
    return {
        "kind": checkpoint.kind,
        "sequence": checkpoint.sequence,
        "chain_hash": checkpoint.chain_hash,
        "created": iso_utc(checkpoint.created),
        "first_sequence": checkpoint.first_sequence,
        "last_sequence": checkpoint.last_sequence,
        "first_prev": checkpoint.first_prev,
        "last_hash": checkpoint.last_hash,
        "count": checkpoint.count,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
    }


def signed_payload(record: Mapping[str, Any]) -> bytes:
    """What the signature covers: the record's canonical JSON without signature and key_id."""
    return canonical_json({k: v for k, v in record.items() if k not in ("signature", "key_id")})


def signature_valid(record: Mapping[str, Any]) -> bool:
    expected = hmac.new(chain_key(), signed_payload(record), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(record.get("signature", "")))


def signed(checkpoint: ChainCheckpoint) -> ChainCheckpoint:
    key = chain_key()
    checkpoint.key_id = key_id(key)
    checkpoint.signature = ""
    payload = signed_payload(checkpoint_record(checkpoint))
    checkpoint.signature = hmac.new(key, payload, hashlib.sha256).hexdigest()
    return checkpoint


# --- Checkpoints --------------------------------------------------------------


def maybe_checkpoint(*, now: datetime | None = None) -> ChainCheckpoint | None:
    """Store a signed checkpoint of the newest sealed event when none exists yet, or when
    ``AUDIT_CHAIN_CHECKPOINT_EVENTS`` events or ``AUDIT_CHAIN_CHECKPOINT_INTERVAL`` have
    passed since the last one; return it, else ``None``."""
    now = now or timezone.now()
    with transaction.atomic():
        if not try_lock():
            return None
        head = highest(last_link())
        if head is None:
            return None
        last = (
            ChainCheckpoint.objects.filter(kind=ChainRecordKind.CHECKPOINT)
            .order_by("-sequence", "-created")
            .only("sequence", "created")
            .first()
        )
        if last is not None and not _checkpoint_due(head.sequence, last, now):
            return None
        checkpoint = ChainCheckpoint(
            kind=ChainRecordKind.CHECKPOINT,
            sequence=head.sequence,
            chain_hash=head.chain_hash,
            created=now,
        )
        signed(checkpoint).save()
    return checkpoint


def _checkpoint_due(head: int, last: ChainCheckpoint, now: datetime) -> bool:
    if head <= last.sequence:
        return False
    return (
        head - last.sequence >= settings.AUDIT_CHAIN_CHECKPOINT_EVENTS
        or now - last.created >= settings.AUDIT_CHAIN_CHECKPOINT_INTERVAL
    )
