"""Default notification rules: what an administrator wants on day one is enabled (exceptions,
configuration errors, suspicious requests, updates); the rest are disabled examples to adapt.
All notify the Administrators group in the drawer, except the password-change rule, which
notifies the user whose password changed. Existing rules of the same name are left alone."""

from django.db import migrations

# Frozen copies: a migration must not change when the code does.
SUPERUSER_GROUP_NAME = "Administrators"
LOCAL_TRANSPORT = "default-local-transport"

# name, severity, enabled, match, notify the administrators, notify the event's user
DEFAULT_RULES = [
    (
        "default-notify-exception",
        "alert",
        True,
        'action in ("system_exception", "system_task_exception", "policy_exception", '
        '"property_mapping_exception")',
        True,
        False,
    ),
    (
        "default-notify-configuration-error",
        "alert",
        True,
        'action = "configuration_error"',
        True,
        False,
    ),
    (
        "default-notify-suspicious-request",
        "warning",
        True,
        'action = "suspicious_request"',
        True,
        False,
    ),
    ("default-notify-update", "notice", True, 'action = "update_available"', True, False),
    ("default-notify-login-blocked", "warning", False, 'action = "login_blocked"', True, False),
    (
        "default-notify-login-failed-abroad",
        "warning",
        False,
        'action = "login_failed" and context.geo.country != "DE"',
        True,
        False,
    ),
    (
        "default-notify-user-password-change",
        "notice",
        False,
        'action = "password_set"',
        False,
        True,
    ),
    (
        "default-notify-new-api-token",
        "warning",
        False,
        'action = "model_created" and context.model.app = "directory" '
        'and context.model.model_name = "token"',
        True,
        False,
    ),
    (
        "default-notify-administrators-changed",
        "alert",
        False,
        'action = "model_updated" and context.model.model_name = "group" '
        'and context.model.name = "Administrators"',
        True,
        False,
    ),
    ("default-notify-secret-view", "notice", False, 'action = "secret_view"', True, False),
]


def create_default_rules(apps, schema_editor):
    Group = apps.get_model("directory", "Group")
    NotificationRule = apps.get_model("auditlog", "NotificationRule")
    NotificationTransport = apps.get_model("auditlog", "NotificationTransport")
    admins, _ = Group.objects.get_or_create(
        name=SUPERUSER_GROUP_NAME, defaults={"is_superuser": True}
    )
    local, _ = NotificationTransport.objects.get_or_create(
        name=LOCAL_TRANSPORT, defaults={"mode": "local"}
    )
    for name, severity, enabled, match, to_admins, to_event_user in DEFAULT_RULES:
        rule, created = NotificationRule.objects.get_or_create(
            name=name,
            defaults={
                "severity": severity,
                "enabled": enabled,
                "match": match,
                "destination_group": admins if to_admins else None,
                "destination_event_user": to_event_user,
            },
        )
        if created:
            rule.transports.add(local)


def remove_default_rules(apps, schema_editor):
    NotificationRule = apps.get_model("auditlog", "NotificationRule")
    NotificationTransport = apps.get_model("auditlog", "NotificationTransport")
    NotificationRule.objects.filter(name__in=[rule[0] for rule in DEFAULT_RULES]).delete()
    NotificationTransport.objects.filter(name=LOCAL_TRANSPORT, rules__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auditlog", "0002_notification_rules"),
        ("directory", "0002_default_brand"),
    ]

    operations = [migrations.RunPython(create_default_rules, remove_default_rules)]
