"""``manage.py loadtest``: concurrent writers and readers against a real gunicorn, then a check
that every confirmed write is stored with its event."""

from __future__ import annotations

import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from auditlog.management.commands.loadtest import LOAD_ACTION, Run, verify
from auditlog.models import Event, EventAction
from auditlog.services import record_event
from tests.servers import free_port, running_gunicorn
from tests.workers import database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres
def test_a_short_load_test_loses_nothing_under_concurrent_writes(tmp_path: Path) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the load test runs against PostgreSQL (SQLite serialises every writer)")
    out = StringIO()
    with running_gunicorn(database_url(), tmp_path, workers=2) as base_url:
        call_command("loadtest", writers=3, readers=2, seconds=3, base_url=base_url, stdout=out)
    report = out.getvalue()
    written = Event.objects.filter(action=LOAD_ACTION).count()
    changed = Event.objects.filter(
        action=EventAction.MODEL_UPDATED,
        context__model__model_name="user",
        context__diff__name__new_value__startswith="load ",
    ).count()
    assert written > 0 and changed > 0
    assert (
        f"events written (201): {written}   stored: {written}   missing: 0   unconfirmed: 0"
        in report
    )
    assert f"user changes (200): {changed}   with their model_updated event: {changed}" in report
    for kind in ("post_event", "patch_user", "list_events", "search_events"):
        assert kind in report


def test_the_load_test_fails_when_requests_fail() -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    out = StringIO()
    with pytest.raises(CommandError, match="Load test failed"):
        call_command(
            "loadtest", writers=1, readers=1, seconds=0.5, base_url=nothing_listens, stdout=out
        )
    assert "error (post_event)" in out.getvalue()


def test_a_confirmed_write_missing_from_the_database_is_reported(admin_user) -> None:
    stored, unconfirmed = (
        record_event(action="loadtest", app="loadtest", context={"run": "r1"}) for _ in range(2)
    )
    lost = str(uuid.uuid4())
    run = Run(run_id="r1", base_url="", headers={}, targets=[admin_user.pk])
    run.written_events = [str(stored.pk), lost]
    run.changed_names = {admin_user.pk: ["a name nobody saw"]}
    verdict = verify(run)
    assert verdict.events_written == 2 and verdict.events_stored == 2
    assert verdict.missing_events == [lost]
    assert verdict.unconfirmed_events == [str(unconfirmed.pk)]
    assert verdict.unaudited_changes == [f"user {admin_user.pk}: a name nobody saw"]
    assert not verdict.complete
