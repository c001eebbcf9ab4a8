"""Notifications and the rules that send them: a user's notification (the drawer), the
transports that carry notifications, the rules that choose which events notify whom, and the
record of every delivery.

The tables were created by the ``auditlog`` app and keep their names (``db_table``), so moving
the models here moved no data (migration ``0001_initial`` creates them in state only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from auditlog.models import Event
from auditlog.search import EventSearchSchema, SearchError, compile_query
from notifications.transports import TemplateError, TransportMode, parse_body_template


class NotificationSeverity(models.TextChoices):
    NOTICE = "notice"
    WARNING = "warning"
    ALERT = "alert"


# --- Notifications --------------------------------------------------------------------------


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user: Any) -> NotificationQuerySet:
        return self.filter(user=user)

    def unseen(self) -> NotificationQuerySet:
        return self.filter(seen=False)


class Notification(models.Model):
    """A message for one user, shown in the notification drawer."""

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    severity = models.TextField(
        choices=NotificationSeverity.choices, default=NotificationSeverity.NOTICE
    )
    body = models.TextField()
    hyperlink = models.TextField(null=True, blank=True, max_length=4096)
    hyperlink_label = models.TextField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # No database constraint: a partitioned events table (PostgreSQL) has no unique key on
    # event_uuid alone to refer to; retention clears the references to what it deletes.
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    seen = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        db_table = "auditlog_notification"
        indexes = [
            models.Index(fields=["user", "seen", "-created"], name="auditlog_notif_user_idx")
        ]

    def __str__(self) -> str:
        body = self.body[:75] + ".." if len(self.body) > 75 else self.body
        return f"Notification for user {self.user_id}: {body}"


# --- Notification rules and transports ------------------------------------------------------
# A rule matches events with a DjangoQL query (the event log's search language) and sends a
# notification to its destinations through its transports; every send is a delivery row.


def validate_event_query(value: str) -> None:
    """A rule's match must be a valid event query (or empty: see :class:`NotificationRule`);
    the error names the problem and where."""
    if not value.strip():
        return
    try:
        compile_query(value, EventSearchSchema)
    except SearchError as exc:
        raise ValidationError(f"Invalid query: {exc}") from None


def validate_webhook_url(value: str) -> None:
    if value:
        validator = URLValidator(
            schemes=["http", "https"], message="Enter a valid http:// or https:// URL."
        )
        validator(value)


def validate_webhook_body_template(value: str) -> None:
    if value:
        try:
            parse_body_template(value)
        except TemplateError as exc:
            raise ValidationError(str(exc)) from None


WEBHOOK_MODES = (TransportMode.WEBHOOK, TransportMode.WEBHOOK_SLACK)


class NotificationTransport(models.Model):
    """How a notification reaches a person: the drawer, a webhook, Slack/Discord or email."""

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    mode = models.TextField(choices=TransportMode.choices, default=TransportMode.LOCAL)
    send_once = models.BooleanField(
        default=False,
        help_text="Send only to the first destination user of a rule (e.g. one chat message).",
    )
    email_subject_prefix = models.TextField(default="authentik Notification: ", blank=True)
    webhook_url = models.TextField(
        blank=True,
        validators=[validate_webhook_url],
        help_text="Where webhook modes POST to (http or https).",
    )
    webhook_body_template = models.TextField(
        blank=True,
        validators=[validate_webhook_body_template],
        help_text=(
            "Optional JSON body for webhook modes in which {{ placeholders }} such as "
            "{{ body }} or {{ event.context.geo.country }} are replaced. Empty: the default body."
        ),
    )

    class Meta:
        db_table = "auditlog_notificationtransport"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"Notification Transport {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Validated on every save, not only through forms and the API.
        validate_webhook_url(self.webhook_url)
        validate_webhook_body_template(self.webhook_body_template)
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.mode in WEBHOOK_MODES and not self.webhook_url:
            label = TransportMode(self.mode).label
            raise ValidationError({"webhook_url": f"A webhook URL is required for {label}."})


class NotificationRule(models.Model):
    """Which events notify whom: events matching ``match`` go to the destination group's
    active members (and the event's user), through the transports; a rule without transports
    notifies in the drawer.

    A rule without a match (empty, the default) matches no event and never fires, like an
    authentik rule without policies (whose empty policy result is false). authentik's clients
    create rules without one (they bind policies instead); such a rule waits, inert, until a
    match is set.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    name = models.TextField(unique=True)
    enabled = models.BooleanField(default=True, help_text="Disabled rules never fire.")
    severity = models.TextField(
        choices=NotificationSeverity.choices, default=NotificationSeverity.NOTICE
    )
    match = models.TextField(
        blank=True,
        default="",
        validators=[validate_event_query],
        help_text='A DjangoQL query over events, e.g. action = "login_failed" and '
        'context.geo.country != "DE". Empty: the rule matches no event.',
    )
    destination_group = models.ForeignKey(
        "directory.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notification_rules",
        help_text="Its active members are notified.",
    )
    destination_event_user = models.BooleanField(
        default=False, help_text="Also notify the user who triggered the event."
    )
    transports = models.ManyToManyField(
        NotificationTransport,
        blank=True,
        related_name="rules",
        db_table="auditlog_notificationrule_transports",
        help_text="None: a notification in the drawer.",
    )

    class Meta:
        db_table = "auditlog_notificationrule"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"Notification Rule {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # An enabled rule must have a valid query; a disabled one may keep a query that a
        # schema change broke, so that it can still be switched off.
        if self.enabled:
            try:
                validate_event_query(self.match)
            except ValidationError as exc:
                raise ValidationError({"match": exc.messages}) from None
        super().save(*args, **kwargs)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class NotificationDeliveryQuerySet(models.QuerySet["NotificationDelivery"]):
    def claimable(self, *, stale_before: datetime) -> NotificationDeliveryQuerySet:
        """Deliveries an attempt may start on: waiting ones, or sends abandoned by a worker."""
        return self.filter(
            Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
            | Q(status=DeliveryStatus.SENDING, updated__lt=stale_before)
        )


class NotificationDelivery(models.Model):
    """One notification for one user through one transport, and what became of it.

    The content is kept here, so a failed send loses nothing and stays visible. The event is
    referenced by its pk, not a foreign key: retention deletes events in bulk, and the record
    of a delivery outlives its event.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False)
    event_uuid = models.UUIDField(null=True, blank=True)
    event_action = models.TextField(blank=True)
    rule = models.ForeignKey(
        NotificationRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    rule_name = models.TextField(blank=True)
    transport = models.ForeignKey(
        NotificationTransport,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        help_text="Empty for a rule without transports (the drawer).",
    )
    transport_name = models.TextField(blank=True)
    mode = models.TextField(choices=TransportMode.choices, default=TransportMode.LOCAL)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_deliveries"
    )
    severity = models.TextField(
        choices=NotificationSeverity.choices, default=NotificationSeverity.NOTICE
    )
    body = models.TextField()
    hyperlink = models.TextField(null=True, blank=True, max_length=4096)
    hyperlink_label = models.TextField(null=True, blank=True)
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.TextField(
        choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    messages = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    finished = models.DateTimeField(null=True, blank=True)

    objects = NotificationDeliveryQuerySet.as_manager()

    class Meta:
        db_table = "auditlog_notificationdelivery"
        verbose_name_plural = "notification deliveries"
        indexes = [
            models.Index(fields=["-created", "-uuid"], name="auditlog_delivery_latest_idx"),
            models.Index(fields=["event_uuid", "rule"], name="auditlog_delivery_event_idx"),
        ]

    def __str__(self) -> str:
        return f"Delivery of {self.rule_name or 'a notification'} to user {self.user_id}"
