from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auditlog.chain.sealing import seal_pending
from auditlog.models import EventAction
from auditlog.services import record_event
from streams import services
from streams.models import Destination

SIGNING_KEY = "a-receiver-side-secret"


@pytest.fixture(autouse=True)
def _fast_retries(settings: Any, tmp_path: Path) -> None:
    settings.STREAMS_RETRY_BASE = timedelta(0)
    settings.STREAMS_FILE_ROOTS = [str(tmp_path), str(Path(settings.DATA_DIR) / "streams")]


@pytest.fixture
def make_events(db: None) -> Callable[..., list[str]]:
    """Record ``count`` events and seal them; their pks, in chain order."""

    def make(count: int, action: str = EventAction.LOGIN, **context: Any) -> list[str]:
        pks = [
            str(
                record_event(action=action, app="tests", context={"n": index, **context}).event_uuid
            )
            for index in range(count)
        ]
        seal_pending()
        return pks

    return make


def make_destination(**fields: Any) -> Destination:
    secrets = {
        "auth_header_value": fields.pop("auth_header_value", None),
        "signing_key": fields.pop("signing_key", SIGNING_KEY),
    }
    destination = Destination(name=fields.pop("name", "siem"), **fields)
    destination.full_clean()
    services.set_secrets(destination, **secrets)
    destination.save()
    return destination


def deliver_all(destination: Destination) -> services.Run:
    """Delivery runs until the destination is caught up or a batch fails."""
    total = services.Run()
    while True:
        run = services.deliver(destination.pk)
        total.sent += run.sent
        total.batches += run.batches
        if run.error or not run.claimed or not run.more:
            total.error = run.error
            return total
