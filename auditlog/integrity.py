"""The nightly integrity check: what follows from a broken chain (a log line and an event that
notifies the administrators). The chain package finds breaches; this module acts on them."""

from __future__ import annotations

import logging

from auditlog.chain.breaches import Verification
from auditlog.chain.sealing import seal_pending
from auditlog.chain.verification import verify
from auditlog.models import EventAction
from auditlog.services import record_event

logger = logging.getLogger(__name__)


def verify_and_report() -> Verification:
    """Verify the whole chain (the scheduler runs this daily); a broken link is logged and
    recorded as a ``system_task_exception`` event, which the default rules notify the
    administrators of, every day until it is dealt with."""
    seal_pending()
    result = verify()
    broken = result.first_broken
    if broken is None:
        logger.info("%s", result.summary())
        return result
    logger.error("%s", broken.message)
    record_event(
        action=EventAction.SYSTEM_TASK_EXCEPTION,
        app="auditlog.chain",
        context={
            "message": broken.message,
            "task": "verify_event_chain",
            "sequence": broken.sequence,
            "event_pk": broken.event_pk,
            "reason": str(broken.reason),
        },
    )
    return result
