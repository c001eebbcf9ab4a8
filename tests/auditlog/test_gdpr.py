"""GDPR erasure: deleting a user deletes the events by them and about them (authentik's
``gdpr_cleanup``), keeps everything else, and leaves the event chain verifiable."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from auditlog import chain
from auditlog.models import Event, EventAction, SystemSettings
from auditlog.retention import erase_user_events
from directory.models import User
from notifications.models import Notification
from project import celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def event_by(user: User | None, **context: Any) -> Event:
    who = {"pk": user.pk, "username": user.username} if user else {}
    return Event.objects.create(
        action=EventAction.CUSTOM_PREFIX + "x", app="t", user=who, context=context
    )


def remaining() -> set[str]:
    return {event.context.get("label", "") for event in Event.objects.all()}


@pytest.fixture
def people(db: None) -> tuple[User, User]:
    return User.objects.create_user("leaver"), User.objects.create_user("stayer")


def test_deleting_a_user_erases_the_events_by_and_about_them(people, admin_user) -> None:
    leaver, stayer = people
    event_by(leaver, label="by the leaver")
    event_by(stayer, label="about the leaver", subject_uuid=leaver.uuid.hex)
    event_by(stayer, label="about the leaver, dashed", subject_uuid=str(leaver.uuid))
    event_by(stayer, label="by the stayer")
    event_by(None, label="mentions the leaver", username=leaver.username)
    notified = event_by(leaver, label="notified")
    note = Notification.objects.create(user=admin_user, event=notified, body="about the leaver")
    chain.seal_pending()
    leaver_uuid = leaver.uuid.hex
    assert Event.objects.filter(
        action=EventAction.MODEL_CREATED, context__subject_uuid=leaver_uuid
    ).exists()

    leaver.delete()

    kept = remaining()
    assert "by the leaver" not in kept and "notified" not in kept
    assert "about the leaver" not in kept and "about the leaver, dashed" not in kept
    assert {"by the stayer", "mentions the leaver"} <= kept
    # The deletion's own event (by the acting user, about the deleted model) stays.
    assert Event.objects.filter(action=EventAction.MODEL_DELETED).exists()
    note.refresh_from_db()
    assert note.event_id is None
    chain.seal_pending()
    result = chain.verify()
    assert result.ok, result
    # The four above and the leaver's model_created event (about them: subject_uuid).
    assert result.pruned == 5
    assert not Event.objects.filter(context__subject_uuid=leaver_uuid).exists()


def test_the_erasure_is_recorded_in_the_chain_so_it_is_not_taken_for_tampering(people) -> None:
    leaver, stayer = people
    for index in range(5):
        event_by(leaver if index % 2 else stayer, label=f"e{index}")
    chain.seal_pending()
    # Two by the leaver, and their model_created event.
    assert erase_user_events(leaver.pk, leaver.uuid) == 3
    assert chain.verify().ok
    # The same deletion without the chain's record is reported.
    victim = Event.objects.filter(user__pk=stayer.pk).order_by("created").first()
    assert victim is not None
    Event.objects.filter(pk=victim.pk)._raw_delete("default")
    assert not chain.verify().ok


def test_with_gdpr_compliance_off_the_events_stay(people) -> None:
    leaver, _ = people
    settings_row = SystemSettings.load()
    settings_row.gdpr_compliance = False
    settings_row.save()
    event_by(leaver, label="by the leaver")
    leaver.delete()
    assert "by the leaver" in remaining()


def test_a_rolled_back_deletion_erases_nothing(people) -> None:
    from django.db import transaction

    leaver, _ = people
    event_by(leaver, label="by the leaver")
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.filter(pk=leaver.pk).first().delete()  # type: ignore[union-attr]
        raise RuntimeError("rolled back")
    assert "by the leaver" in remaining()


def test_the_broker_down_still_erases(people, monkeypatch) -> None:
    """If the task cannot be queued, the erasure runs at once rather than not at all."""
    from auditlog import tasks

    leaver, _ = people
    event_by(leaver, label="by the leaver")

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.gdpr_cleanup, "delay", unavailable)
    assert celery_app.conf.task_always_eager
    leaver.delete()
    assert "by the leaver" not in remaining()


def test_the_settings_page_switches_gdpr_compliance(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/system/settings/").content.decode()
    assert "data-gdpr-compliance" in page and " checked" in page
    response = client.post("/system/settings/", {"event_retention": "days=30"})
    assert response.status_code == 302
    assert SystemSettings.load().gdpr_compliance is False
    client.post("/system/settings/", {"event_retention": "days=30", "gdpr_compliance": "on"})
    assert SystemSettings.load().gdpr_compliance is True
