"""Moving the notification models to their own app keeps their tables, their rows and the
permissions granted on them: a database with rows written under the old layout (the models in
``auditlog``) is migrated forward and read through the new models."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.utils import timezone

from directory.models import User
from notifications.models import (
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
)

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("auditlog", "0007_event_latest_covers_action"), ("notifications", None)]


def migrate(targets: list[tuple[str, str | None]]) -> StateApps:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([node for node in targets if node[1]]).apps


def latest() -> list[tuple[str, str | None]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def old_layout() -> Iterator[StateApps]:
    """The database as it was before the move; migrated forward again afterwards."""
    forward = latest()
    try:
        yield migrate(BEFORE)
    finally:
        migrate(forward)


def test_rows_written_before_the_move_are_read_through_the_new_models(old_layout) -> None:
    apps = old_layout
    assert not apps.all_models["notifications"]  # the models are auditlog's here
    OldEvent = apps.get_model("auditlog", "Event")
    OldUser = apps.get_model("directory", "User")
    OldGroup = apps.get_model("directory", "Group")
    OldTransport = apps.get_model("auditlog", "NotificationTransport")
    OldRule = apps.get_model("auditlog", "NotificationRule")
    OldNotification = apps.get_model("auditlog", "Notification")
    OldDelivery = apps.get_model("auditlog", "NotificationDelivery")
    Permission = apps.get_model("auth", "Permission")

    now = timezone.now()
    ana = OldUser.objects.create(username="ana-before-the-move", uuid=uuid4())
    group = OldGroup.objects.create(name="Security before the move")
    event = OldEvent.objects.create(
        action="login_failed",
        app="tests",
        created=now,
        expires=now + timezone.timedelta(days=1),
    )
    hook = OldTransport.objects.create(
        name="hook", mode="webhook", webhook_url="https://hooks.example.com/x"
    )
    rule = OldRule.objects.create(
        name="failures", match='action = "login_failed"', destination_group=group
    )
    rule.transports.add(hook)
    notification = OldNotification.objects.create(
        user=ana, body="Ana failed", severity="alert", event=event
    )
    OldDelivery.objects.create(
        event_uuid=event.pk,
        rule=rule,
        rule_name="failures",
        transport=hook,
        transport_name="hook",
        mode="webhook",
        user=ana,
        body="Ana failed",
        notification=notification,
        status="sent",
    )
    permission = Permission.objects.get(
        content_type__app_label="auditlog", codename="view_notificationrule"
    )
    ana.user_permissions.add(permission)

    migrate(latest())

    rule_now = NotificationRule.objects.get(name="failures")
    assert rule_now.match == 'action = "login_failed"'
    assert rule_now.destination_group is not None
    assert rule_now.destination_group.name == "Security before the move"
    assert [t.name for t in rule_now.transports.all()] == ["hook"]
    assert NotificationTransport.objects.get(name="hook").webhook_url.endswith("/x")
    (note,) = Notification.objects.filter(user__username="ana-before-the-move")
    assert (note.body, note.severity, note.event_id) == ("Ana failed", "alert", event.pk)
    (delivery,) = NotificationDelivery.objects.filter(rule=rule_now)
    assert (delivery.transport, delivery.notification, delivery.status) == (
        NotificationTransport.objects.get(name="hook"),
        note,
        "sent",
    )
    # The permission granted before the move still holds, under the app's new label.
    user = User.objects.get(username="ana-before-the-move")
    assert user.has_perm("notifications.view_notificationrule")
    assert not user.has_perm("notifications.change_notificationrule")


def test_the_tables_keep_their_names() -> None:
    tables = set(connection.introspection.table_names())
    for model in (Notification, NotificationTransport, NotificationRule, NotificationDelivery):
        assert model._meta.db_table.startswith("auditlog_")
        assert model._meta.db_table in tables
    through = NotificationRule.transports.through._meta.db_table
    assert through == "auditlog_notificationrule_transports" and through in tables
