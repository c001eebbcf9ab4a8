"""Tamper evidence for the event log: a hash chain over the events, signed checkpoints, and
the verification that finds the first broken link.

* **Insert-only.** Nothing here writes the events table except :mod:`.pruning`, which
  deletes events for retention and erasure together with their links. An event's place in
  the chain is a row of its own (:class:`~auditlog.models.EventChainLink`). A database
  trigger (migrations ``0004_event_chain``, ``0008_chain_queued_at``; PostgreSQL and SQLite)
  queues every inserted event in :class:`~auditlog.models.EventChainPending` with the
  database's clock, however it was written (ORM, ``bulk_create``, ``COPY``, raw SQL), inside
  the inserting statement.
* **Sealing** (:mod:`.sealing`) gives each queued event the next link; the hash covers the
  event's canonical form (:mod:`.canonical`) and the clock it was queued at, and each sealed
  batch is published to :mod:`auditlog.feed` after it commits.
* **Checkpoints** (:mod:`.signing`) sign the head with HMAC-SHA256 under a key that is not in
  the database; **prune records** (:mod:`.pruning`) account for what retention removed.
* **Verification** (:mod:`.verification`) walks one consistent snapshot and reports the first
  broken link (:mod:`.breaches`), including events backdated beyond
  ``AUDIT_CHAIN_BACKDATE_BOUND``.

The modules import in one direction only: canonical <- links <- signing <- pruning <-
sealing <- breaches <- anchors <- verification <- files; none imports the services or the tasks (but
for the lazy task enqueue in :func:`.sealing.enqueue_seal`). What they cannot show: a change
made before an event was sealed (seconds after its commit), and the removal of the newest
events together with their links after the last checkpoint (the chain simply ends earlier);
frequent checkpoints kept outside the database narrow both.

The names below are re-exported for code written against the former single module; new code
imports from the submodules.
"""

from __future__ import annotations

from auditlog.chain.breaches import (
    BREACH_LABELS,
    Breach,
    BrokenLink,
    BrokenLinkJSON,
    Verification,
    VerificationJSON,
)
from auditlog.chain.canonical import (
    CANONICAL_FIELDS,
    GENESIS,
    canonical_event,
    canonical_json,
    iso_utc,
    link_hash,
)
from auditlog.chain.files import CheckpointFileError, read_checkpoint_lines
from auditlog.chain.links import (
    Backlog,
    Link,
    chain_head,
    keys_in,
    lock_chain,
    queued_by_trigger,
    sealing_backlog,
    unlinked_events,
    unsealed_count,
)
from auditlog.chain.pruning import (
    RUN_ENDS_SQL,
    PrunedRun,
    delete_with_links,
    prune_records,
    record_pruned,
    record_runs,
    remove_from_chain,
    runs_from_ends,
)
from auditlog.chain.sealing import enqueue_seal, request_seal, seal_pending
from auditlog.chain.signing import (
    CheckpointRecord,
    chain_key,
    checkpoint_record,
    key_id,
    maybe_checkpoint,
    signature_valid,
    signed_payload,
)
from auditlog.chain.verification import count_sealed, snapshot, verify

__all__ = [
    "BREACH_LABELS",
    "CANONICAL_FIELDS",
    "GENESIS",
    "RUN_ENDS_SQL",
    "Backlog",
    "Breach",
    "BrokenLink",
    "BrokenLinkJSON",
    "CheckpointFileError",
    "CheckpointRecord",
    "Link",
    "PrunedRun",
    "Verification",
    "VerificationJSON",
    "canonical_event",
    "canonical_json",
    "chain_head",
    "chain_key",
    "checkpoint_record",
    "count_sealed",
    "delete_with_links",
    "enqueue_seal",
    "iso_utc",
    "key_id",
    "keys_in",
    "link_hash",
    "lock_chain",
    "maybe_checkpoint",
    "prune_records",
    "queued_by_trigger",
    "read_checkpoint_lines",
    "record_pruned",
    "record_runs",
    "remove_from_chain",
    "request_seal",
    "runs_from_ends",
    "seal_pending",
    "sealing_backlog",
    "signature_valid",
    "signed_payload",
    "snapshot",
    "unlinked_events",
    "unsealed_count",
    "verify",
]
