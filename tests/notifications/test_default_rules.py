"""The default rules shipped by migration 0003, and the email settings."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from auditlog.search import EventSearchSchema, compile_query
from auditlog.services import record_event
from directory.models import SUPERUSER_GROUP_NAME, Group, User
from notifications.models import Notification, NotificationRule, NotificationTransport
from notifications.tasks import dispatch_notifications, dispatch_notifications_batch
from tests.conftest import REPO

pytestmark = pytest.mark.django_db

migration = importlib.import_module("auditlog.migrations.0003_default_notification_rules")


@functools.cache
def historical_apps() -> Apps:
    """The models as that migration sees them (the rules were still auditlog's then)."""
    loader = MigrationLoader(connection)
    return loader.project_state(("auditlog", "0003_default_notification_rules")).apps


ENABLED = {
    "default-notify-exception",
    "default-notify-configuration-error",
    "default-notify-suspicious-request",
    "default-notify-update",
}


@pytest.fixture
def defaults() -> list[NotificationRule]:
    migration.create_default_rules(historical_apps(), None)
    return list(NotificationRule.objects.order_by("name"))


def test_the_day_one_rules_are_enabled_and_the_examples_are_not(defaults) -> None:
    assert {rule.name for rule in defaults if rule.enabled} == ENABLED
    assert len(defaults) == len(migration.DEFAULT_RULES) > len(ENABLED)


def test_every_default_rule_has_a_valid_query(defaults) -> None:
    for rule in defaults:
        compile_query(rule.match, EventSearchSchema)


def test_the_defaults_notify_the_administrators_in_the_drawer(defaults) -> None:
    admins = Group.objects.get(name=SUPERUSER_GROUP_NAME)
    assert admins.is_superuser
    (local,) = NotificationTransport.objects.all()
    assert (local.name, local.mode) == ("default-local-transport", "local")
    for rule in defaults:
        assert list(rule.transports.all()) == [local]
        if rule.name == "default-notify-user-password-change":
            assert rule.destination_group is None and rule.destination_event_user
        else:
            assert rule.destination_group == admins


def test_running_it_again_changes_nothing(defaults) -> None:
    NotificationRule.objects.filter(name="default-notify-update").update(enabled=False)
    migration.create_default_rules(historical_apps(), None)
    assert NotificationRule.objects.count() == len(defaults)
    assert not NotificationRule.objects.get(name="default-notify-update").enabled
    assert Group.objects.filter(name=SUPERUSER_GROUP_NAME).count() == 1


def test_the_reverse_removes_them(defaults) -> None:
    migration.remove_default_rules(historical_apps(), None)
    assert not NotificationRule.objects.exists()
    assert not NotificationTransport.objects.exists()


def test_a_system_exception_alerts_the_administrators(defaults, admin_user, commit) -> None:
    bystander = User.objects.create_user("bystander")
    with commit():
        record_event(action="system_exception", app="tests", context={"message": "Worker crashed"})
        record_event(action="login_failed", app="tests")  # the abroad rule is only an example
    notification = Notification.objects.get()
    assert (notification.user, notification.severity, notification.body) == (
        admin_user,
        "alert",
        "Worker crashed",
    )
    assert not Notification.objects.filter(user=bystander).exists()


def test_with_the_defaults_ordinary_events_queue_no_task(defaults, commit, monkeypatch) -> None:
    queued: list[str] = []
    monkeypatch.setattr(dispatch_notifications, "delay", queued.append)
    monkeypatch.setattr(dispatch_notifications_batch, "delay", queued.extend)
    with commit():
        record_event(action="login", app="tests")
        record_event(action="model_created", app="tests")
        exception = record_event(action="system_exception", app="tests")
    assert queued == [str(exception.pk)]


def test_email_tls_and_ssl_together_fail_loudly() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": str(REPO / "var"),
            "EMAIL_USE_TLS": "true",
            "EMAIL_USE_SSL": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "EMAIL_USE_TLS and EMAIL_USE_SSL" in result.stderr
