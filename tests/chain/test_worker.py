"""A real Celery worker seals what was written in bulk, with the same key as the web side."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from auditlog import chain
from auditlog.bulk import write_events
from auditlog.models import ChainCheckpoint, Event
from tests.chain.conftest import TEST_KEY
from tests.workers import running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_seals_bulk_written_events_and_signs_a_checkpoint(tmp_path: Path) -> None:
    now = timezone.now()
    write_events(
        Event(action="login", app="demo", created=now, context={"i": i}) for i in range(40)
    )
    assert chain.unsealed_count() == 40
    with running_worker(
        "filesystem://", data_dir=tmp_path, extra_env={"AUDIT_CHAIN_KEY": TEST_KEY}
    ) as sender:
        sender.send_task("auditlog.tasks.seal_events")
        wait_until(lambda: chain.unsealed_count() == 0, message="the worker to seal the events")
        wait_until(ChainCheckpoint.objects.exists, message="the worker's checkpoint")
    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.checkpoints) == (40, 1)
