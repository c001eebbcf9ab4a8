# The notification models, taken over from the ``auditlog`` app with their tables and data:
# the models are created in state only, on the tables auditlog created (same ``db_table``),
# and ``auditlog.0008`` then drops them from auditlog's state. Their content types move with
# them, so the permissions already granted (view_notificationrule, ...) stay granted.

import django.db.models.deletion
import notifications.models
import uuid
from django.conf import settings
from django.db import migrations, models

MODELS = ("notification", "notificationtransport", "notificationrule", "notificationdelivery")


def _move_content_types(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.db_manager(schema_editor.connection.alias)
    for model in MODELS:
        if types.filter(app_label=target, model=model).exists():
            continue  # already there (created by a run that had both); keep its permissions
        types.filter(app_label=source, model=model).update(app_label=target)
    types.clear_cache()


def content_types_to_notifications(apps, schema_editor):
    _move_content_types(apps, schema_editor, "auditlog", "notifications")


def content_types_to_auditlog(apps, schema_editor):
    _move_content_types(apps, schema_editor, "notifications", "auditlog")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("auditlog", "0007_event_latest_covers_action"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("directory", "0003_token_intent_labels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="NotificationTransport",
                    fields=[
                        (
                            "uuid",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("name", models.TextField(unique=True)),
                        (
                            "mode",
                            models.TextField(
                                choices=[
                                    ("local", "Local notifications (drawer)"),
                                    ("webhook", "Generic Webhook"),
                                    ("webhook_slack", "Slack Webhook (Slack/Discord)"),
                                    ("email", "Email"),
                                ],
                                default="local",
                            ),
                        ),
                        (
                            "send_once",
                            models.BooleanField(
                                default=False,
                                help_text="Send only to the first destination user of a rule (e.g. one chat message).",
                            ),
                        ),
                        (
                            "email_subject_prefix",
                            models.TextField(blank=True, default="authentik Notification: "),
                        ),
                        (
                            "webhook_url",
                            models.TextField(
                                blank=True,
                                help_text="Where webhook modes POST to (http or https).",
                                validators=[notifications.models.validate_webhook_url],
                            ),
                        ),
                        (
                            "webhook_body_template",
                            models.TextField(
                                blank=True,
                                help_text="Optional JSON body for webhook modes in which {{ placeholders }} such as {{ body }} or {{ event.context.geo.country }} are replaced. Empty: the default body.",
                                validators=[notifications.models.validate_webhook_body_template],
                            ),
                        ),
                    ],
                    options={
                        "db_table": "auditlog_notificationtransport",
                        "ordering": ["name"],
                    },
                ),
                migrations.CreateModel(
                    name="Notification",
                    fields=[
                        (
                            "uuid",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        (
                            "severity",
                            models.TextField(
                                choices=[
                                    ("notice", "Notice"),
                                    ("warning", "Warning"),
                                    ("alert", "Alert"),
                                ],
                                default="notice",
                            ),
                        ),
                        ("body", models.TextField()),
                        ("hyperlink", models.TextField(blank=True, max_length=4096, null=True)),
                        ("hyperlink_label", models.TextField(blank=True, null=True)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("seen", models.BooleanField(default=False)),
                        (
                            "event",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to="auditlog.event",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="notifications",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "auditlog_notification",
                    },
                ),
                migrations.CreateModel(
                    name="NotificationRule",
                    fields=[
                        (
                            "uuid",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("name", models.TextField(unique=True)),
                        (
                            "enabled",
                            models.BooleanField(
                                default=True, help_text="Disabled rules never fire."
                            ),
                        ),
                        (
                            "severity",
                            models.TextField(
                                choices=[
                                    ("notice", "Notice"),
                                    ("warning", "Warning"),
                                    ("alert", "Alert"),
                                ],
                                default="notice",
                            ),
                        ),
                        (
                            "match",
                            models.TextField(
                                blank=True,
                                default="",
                                help_text='A DjangoQL query over events, e.g. action = "login_failed" and context.geo.country != "DE". Empty: the rule matches no event.',
                                validators=[notifications.models.validate_event_query],
                            ),
                        ),
                        (
                            "destination_event_user",
                            models.BooleanField(
                                default=False,
                                help_text="Also notify the user who triggered the event.",
                            ),
                        ),
                        (
                            "destination_group",
                            models.ForeignKey(
                                blank=True,
                                help_text="Its active members are notified.",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="notification_rules",
                                to="directory.group",
                            ),
                        ),
                        (
                            "transports",
                            models.ManyToManyField(
                                blank=True,
                                db_table="auditlog_notificationrule_transports",
                                help_text="None: a notification in the drawer.",
                                related_name="rules",
                                to="notifications.notificationtransport",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "auditlog_notificationrule",
                        "ordering": ["name"],
                    },
                ),
                migrations.CreateModel(
                    name="NotificationDelivery",
                    fields=[
                        (
                            "uuid",
                            models.UUIDField(
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("event_uuid", models.UUIDField(blank=True, null=True)),
                        ("event_action", models.TextField(blank=True)),
                        ("rule_name", models.TextField(blank=True)),
                        ("transport_name", models.TextField(blank=True)),
                        (
                            "mode",
                            models.TextField(
                                choices=[
                                    ("local", "Local notifications (drawer)"),
                                    ("webhook", "Generic Webhook"),
                                    ("webhook_slack", "Slack Webhook (Slack/Discord)"),
                                    ("email", "Email"),
                                ],
                                default="local",
                            ),
                        ),
                        (
                            "severity",
                            models.TextField(
                                choices=[
                                    ("notice", "Notice"),
                                    ("warning", "Warning"),
                                    ("alert", "Alert"),
                                ],
                                default="notice",
                            ),
                        ),
                        ("body", models.TextField()),
                        ("hyperlink", models.TextField(blank=True, max_length=4096, null=True)),
                        ("hyperlink_label", models.TextField(blank=True, null=True)),
                        (
                            "status",
                            models.TextField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("sending", "Sending"),
                                    ("retrying", "Retrying"),
                                    ("sent", "Sent"),
                                    ("failed", "Failed"),
                                    ("skipped", "Skipped"),
                                ],
                                db_index=True,
                                default="pending",
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                        ("messages", models.JSONField(blank=True, default=list)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("updated", models.DateTimeField(auto_now=True)),
                        ("finished", models.DateTimeField(blank=True, null=True)),
                        (
                            "notification",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="notifications.notification",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="notification_deliveries",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "rule",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="deliveries",
                                to="notifications.notificationrule",
                            ),
                        ),
                        (
                            "transport",
                            models.ForeignKey(
                                blank=True,
                                help_text="Empty for a rule without transports (the drawer).",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="deliveries",
                                to="notifications.notificationtransport",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "notification deliveries",
                        "db_table": "auditlog_notificationdelivery",
                    },
                ),
                migrations.AddIndex(
                    model_name="notification",
                    index=models.Index(
                        fields=["user", "seen", "-created"], name="auditlog_notif_user_idx"
                    ),
                ),
                migrations.AddIndex(
                    model_name="notificationdelivery",
                    index=models.Index(
                        fields=["-created", "-uuid"], name="auditlog_delivery_latest_idx"
                    ),
                ),
                migrations.AddIndex(
                    model_name="notificationdelivery",
                    index=models.Index(
                        fields=["event_uuid", "rule"], name="auditlog_delivery_event_idx"
                    ),
                ),
            ],
        ),
        migrations.RunPython(content_types_to_notifications, content_types_to_auditlog),
    ]
