# Moves the notification models to the ``notifications`` app, in state only: the tables stay as
# they are, with their data, and ``notifications.0001_initial`` takes them over under the same
# names (``db_table``).

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("auditlog", "0008_chain_queued_at"),
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="notificationdelivery",
                    name="notification",
                ),
                migrations.RemoveField(
                    model_name="notificationdelivery",
                    name="rule",
                ),
                migrations.RemoveField(
                    model_name="notificationdelivery",
                    name="transport",
                ),
                migrations.RemoveField(
                    model_name="notificationdelivery",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="notificationrule",
                    name="destination_group",
                ),
                migrations.RemoveField(
                    model_name="notificationrule",
                    name="transports",
                ),
                migrations.DeleteModel(
                    name="Notification",
                ),
                migrations.DeleteModel(
                    name="NotificationDelivery",
                ),
                migrations.DeleteModel(
                    name="NotificationRule",
                ),
                migrations.DeleteModel(
                    name="NotificationTransport",
                ),
            ],
        ),
    ]
