"""Query filters of the notification endpoints."""

from __future__ import annotations

import django_filters

from auditlog.api.filters import IdFilter, StrictFilterSet, UTCDateTimeFilter
from notifications.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationSeverity,
    NotificationTransport,
    TransportMode,
)


class NotificationFilter(StrictFilterSet):
    severity = django_filters.ChoiceFilter(
        choices=NotificationSeverity.choices, help_text="Severity."
    )
    body = django_filters.CharFilter(lookup_expr="icontains", help_text="Body contains.")
    created__gte = UTCDateTimeFilter(
        field_name="created", lookup_expr="gte", help_text="Created at or after."
    )
    created__lte = UTCDateTimeFilter(
        field_name="created", lookup_expr="lte", help_text="Created at or before."
    )
    event = django_filters.UUIDFilter(field_name="event_id", help_text="The linked event's pk.")
    seen = django_filters.BooleanFilter(help_text="Read (true) or unread (false).")
    user = IdFilter(field_name="user_id", help_text="The recipient's pk (always you).")

    class Meta:
        model = Notification
        fields: list[str] = []


class NotificationTransportFilter(StrictFilterSet):
    name = django_filters.CharFilter(help_text="Exact name.")
    mode = django_filters.ChoiceFilter(choices=TransportMode.choices, help_text="Mode.")
    send_once = django_filters.BooleanFilter(help_text="Sends to the first recipient only.")

    class Meta:
        model = NotificationTransport
        fields: list[str] = []


class NotificationRuleFilter(StrictFilterSet):
    name = django_filters.CharFilter(help_text="Exact name.")
    severity = django_filters.ChoiceFilter(
        choices=NotificationSeverity.choices, help_text="Severity."
    )
    enabled = django_filters.BooleanFilter(help_text="Enabled (true) or disabled (false).")
    destination_group__name = django_filters.CharFilter(
        field_name="destination_group__name", help_text="The destination group's exact name."
    )
    transport = django_filters.UUIDFilter(
        field_name="transports", help_text="Rules using this transport (its pk)."
    )

    class Meta:
        model = NotificationRule
        fields: list[str] = []


class NotificationDeliveryFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices, help_text="Status.")
    mode = django_filters.ChoiceFilter(choices=TransportMode.choices, help_text="Mode.")
    rule = django_filters.UUIDFilter(field_name="rule_id", help_text="The rule's pk.")
    transport = django_filters.UUIDFilter(
        field_name="transport_id", help_text="The transport's pk."
    )
    event = django_filters.UUIDFilter(field_name="event_uuid", help_text="The event's pk.")
    user = IdFilter(field_name="user_id", help_text="The recipient's pk.")

    class Meta:
        model = NotificationDelivery
        fields: list[str] = []
