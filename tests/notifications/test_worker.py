"""End to end through a real Celery worker process on Redis: a failed login that matches a rule
puts a notification in the drawers of the group's members and calls the webhook."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from auditlog import chain
from auditlog.models import Event
from directory.models import Group, User
from notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
)
from notifications.tasks import dispatch_notifications, dispatch_notifications_batch
from tests.workers import redis_url_or_skip, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_failed_login_notifies_the_group_and_calls_the_webhook_via_a_real_worker(
    tmp_path: Path, webhook_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = redis_url_or_skip()
    group = Group.objects.create(name="Security")
    ana = User.objects.create_user("ana", "ana@example.com", "ana-password-1")
    ben = User.objects.create_user("ben", "ben@example.com")
    gone = User.objects.create_user("gone", "gone@example.com", is_active=False)
    group.users.add(ana, ben, gone)
    drawer = NotificationTransport.objects.create(name="drawer")
    hook = NotificationTransport.objects.create(
        name="hook", mode="webhook", webhook_url=webhook_server.url(), send_once=True
    )
    rule = NotificationRule.objects.create(
        name="failed-logins",
        match='action = "login_failed"',
        severity="alert",
        destination_group=group,
    )
    rule.transports.set([drawer, hook])

    with running_worker(broker, data_dir=tmp_path) as sender:
        # This process runs tasks eagerly; send the dispatch to the worker instead.
        monkeypatch.setattr(
            dispatch_notifications,
            "delay",
            lambda event_id: sender.send_task(dispatch_notifications.name, args=[event_id]),
        )
        monkeypatch.setattr(
            dispatch_notifications_batch,
            "delay",
            lambda event_ids: sender.send_task(dispatch_notifications_batch.name, args=[event_ids]),
        )
        chain.sealing._next_enqueue = 0.0  # sealed (here) on commit, then handed to the worker
        assert not Client().login(username="ana", password="wrong-password")
        event = Event.objects.get(action="login_failed")
        wait_until(
            lambda: Notification.objects.count() == 2 and len(webhook_server.received) == 1,
            message=f"the worker to notify (log: {sender.log_path})",
        )
        wait_until(
            lambda: not NotificationDelivery.objects.exclude(status=DeliveryStatus.SENT).exists(),
            message="every delivery to be recorded as sent",
        )
        log = sender.log_path.read_text()
    # The work was done by the worker process, not in this one.
    assert "auditlog.tasks.dispatch_notifications" in log
    assert log.count("auditlog.tasks.deliver_notification") >= 3

    notifications = Notification.objects.order_by("user__username")
    assert [n.user.username for n in notifications] == ["ana", "ben"]
    assert all(n.event_id == event.pk and n.severity == "alert" for n in notifications)
    (body,) = webhook_server.bodies()
    assert body["severity"] == "alert"
    assert body["user_username"] == "ana"  # send_once: the first member only
    assert body["event_user_username"] == "ana"
    assert "wrong-password" not in str(body)
    assert NotificationDelivery.objects.filter(user=gone).count() == 0
