"""A forged, backdated event does not pass (issue 16 item 6): the database's clock at the
insert is kept under the link's hash, and an event whose ``created`` lies further before it
than AUDIT_CHAIN_BACKDATE_BOUND is logged by the sealer and reported by verification, unless
it says it was imported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from auditlog import chain
from auditlog.bulk import write_events
from auditlog.chain.breaches import Breach
from auditlog.models import Event, EventChainLink, EventChainPending
from auditlog.services import record_event
from tests.chain.conftest import insert_raw, sequence_of, write

pytestmark = pytest.mark.django_db


def forged_login(age: timedelta, **context: Any) -> Event:
    now = timezone.now()
    return Event(
        event_uuid=uuid4(),
        action="login",
        app="authentik.events.signals",
        user={"pk": 1, "username": "akadmin"},
        context=context,
        client_ip="81.2.69.142",
        created=now - age,
        expires=now + timedelta(days=365),
    )


def test_the_default_bound_is_a_few_minutes() -> None:
    bound = django_settings.AUDIT_CHAIN_BACKDATE_BOUND
    assert timedelta(minutes=1) <= bound <= timedelta(minutes=15)


def test_the_queue_records_the_database_clock_at_the_insert() -> None:
    before = timezone.now()
    (event,) = write(1)
    queued_at = EventChainPending.objects.get(pk=event.pk).queued_at
    assert queued_at is not None
    # The database's clock, not a copy of the event's time (SQLite keeps milliseconds).
    assert before - timedelta(seconds=1) <= queued_at <= timezone.now() + timedelta(seconds=1)
    chain.seal_pending()
    assert EventChainLink.objects.get(event_uuid=event.pk).queued_at == queued_at


def test_a_login_inserted_with_plain_sql_ten_days_in_the_past_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    write(3)
    forged = forged_login(timedelta(days=10))
    insert_raw(forged)
    write(2)

    with caplog.at_level("WARNING", logger="auditlog.chain"):
        assert chain.seal_pending() == 6
    assert f"Event {forged.pk} (login)" in caplog.text
    assert "10 days" in caplog.text
    assert "backdated" in caplog.text

    result = chain.verify()
    assert not result.ok
    broken = result.first_broken
    assert broken is not None
    assert (broken.sequence, broken.event_pk, broken.reason) == (
        sequence_of(forged),
        str(forged.pk),
        Breach.BACKDATED,
    )
    assert "AUDIT_CHAIN_BACKDATE_BOUND" in broken.message
    assert result.backdated == 1
    # The walk went on past it: every other link was checked.
    assert result.verified == 6


def test_rewriting_the_recorded_clock_to_hide_a_backdated_event_breaks_the_link() -> None:
    forged = forged_login(timedelta(days=10))
    insert_raw(forged)
    chain.seal_pending()
    EventChainLink.objects.filter(event_uuid=forged.pk).update(queued_at=forged.created)
    broken = chain.verify().first_broken
    assert broken is not None
    assert (broken.event_pk, broken.reason) == (str(forged.pk), Breach.CONTENT_CHANGED)


def test_a_busy_minute_with_slow_transactions_is_not_a_false_alarm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = timezone.now()
    with caplog.at_level("WARNING", logger="auditlog.chain"):
        for index in range(150):
            with transaction.atomic():
                record_event(action="login", app="tests", context={"i": index})
                if index % 10 == 0:
                    record_event(action="logout", app="tests", context={"i": index})
        # Events built early in transactions that took seconds (and one that took four
        # minutes) before they were inserted, and a bulk batch stamped at its start.
        slow = [
            Event(
                action="login", app="tests", context={"slow": s}, created=now - timedelta(seconds=s)
            )
            for s in (2, 5, 9, 30, 240)
        ]
        write_events(slow)
        chain.seal_pending()
    assert "backdated" not in caplog.text

    result = chain.verify()
    assert result.ok, result.first_broken
    assert (result.verified, result.backdated) == (170, 0)


def test_events_that_say_they_were_imported_keep_their_original_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    imported = forged_login(timedelta(days=400), imported={"source": "authentik", "pk": "5a1d0c3e"})
    insert_raw(imported)
    with caplog.at_level("WARNING", logger="auditlog.chain"):
        chain.seal_pending()
    assert "backdated" not in caplog.text
    result = chain.verify()
    assert result.ok, result.first_broken


@pytest.mark.parametrize("marker", [True, "authentik", {}, {"source": ""}])
def test_a_marker_that_names_no_source_is_no_excuse(marker: Any) -> None:
    insert_raw(forged_login(timedelta(days=10), imported=marker))
    chain.seal_pending()
    broken = chain.verify().first_broken
    assert broken is not None and broken.reason == Breach.BACKDATED


def test_the_bound_is_a_setting(settings: Any) -> None:
    insert_raw(forged_login(timedelta(hours=2)))
    chain.seal_pending()
    assert chain.verify().first_broken is not None
    settings.AUDIT_CHAIN_BACKDATE_BOUND = timedelta(hours=3)
    assert chain.verify().ok


def test_a_structural_breach_is_named_before_a_backdated_event() -> None:
    insert_raw(forged_login(timedelta(days=10)))
    write(3)
    chain.seal_pending()
    last = EventChainLink.objects.order_by("-sequence").first()
    assert last is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auditlog_event SET app = 'forged' WHERE event_uuid = %s",
            [Event._meta.pk.get_db_prep_value(last.event_uuid, connection)],  # type: ignore[union-attr]
        )
    result = chain.verify()
    assert result.first_broken is not None
    assert result.first_broken.reason == Breach.CONTENT_CHANGED
