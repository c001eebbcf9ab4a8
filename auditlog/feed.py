"""The one place where every committed event is offered to what follows from it.

Events enter the table by many paths: the recording service, ``COPY`` of a batch, database
triggers, or SQL behind the application's back. The chain's queue sees all of them (a
trigger queues every inserted row), and the sealer takes that queue in chain order. After a
sealed batch commits, the sealer publishes it here; consequences (notification rules, the
live stream, SIEM streams) subscribe to :data:`events_sealed` instead of hanging on
``post_save``, which only some paths send.

This module imports nothing of the project: lower rooms publish, higher rooms subscribe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.dispatch import Signal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedEvent:
    """An event that has just been given its place in the chain."""

    pk: str  # the event's UUID, as text
    action: str
    sequence: int
    chain_hash: str


# Sent after each sealed batch commits, with ``events``: a list of SealedEvent in chain order.
events_sealed = Signal()


def publish(events: Sequence[SealedEvent]) -> None:
    """Offer ``events`` (committed and sealed, in chain order) to every subscriber. A failing
    subscriber is logged and never stops the others or the sealer: the events are stored
    and chained whatever a consequence does."""
    if not events:
        return
    for receiver, result in events_sealed.send_robust(sender=SealedEvent, events=list(events)):
        if isinstance(result, Exception):
            logger.error(
                "Subscriber %r failed on %d sealed events",
                receiver,
                len(events),
                exc_info=result,
            )
