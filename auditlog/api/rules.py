"""``/api/v3/events/transports/``, ``/events/rules/`` and ``/events/deliveries/``: notification
transports, the rules that use them, and the (read-only) record of every delivery.

A transport's ``webhook_url`` is a secret (Slack and Discord put the credential in the path):
it is answered as its scheme and host followed by the mask, and a masked value sent back
keeps the stored URL.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import IdFilter, SearchFilter, StableOrderingFilter
from auditlog.models import (
    WEBHOOK_MODES,
    DeliveryStatus,
    NotificationDelivery,
    NotificationRule,
    NotificationSeverity,
    NotificationTransport,
    TransportMode,
    validate_webhook_url,
)
from auditlog.notifications import send_test
from auditlog.sanitize import MASK
from directory.models import Group

# --- Serializers ----------------------------------------------------------------------------


def mask_webhook_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` → ``https://hooks.slack.com/****…``."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{MASK}"


class NotificationTransportSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    mode_verbose = serializers.CharField(source="get_mode_display", read_only=True)
    webhook_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4096,
        help_text="http(s) URL, required for webhook modes. Answered masked; sending the masked "
        "value back keeps the stored URL.",
    )

    class Meta:
        model = NotificationTransport
        fields = [
            "pk",
            "name",
            "mode",
            "mode_verbose",
            "send_once",
            "email_subject_prefix",
            "webhook_url",
            "webhook_body_template",
        ]

    def to_representation(self, instance: NotificationTransport) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["webhook_url"] = mask_webhook_url(instance.webhook_url)
        return data

    def validate_webhook_url(self, value: str) -> str:
        if MASK in value:
            if self.instance is not None:
                return str(self.instance.webhook_url)
            raise serializers.ValidationError("Enter the full webhook URL.")
        try:
            validate_webhook_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        mode = attrs.get("mode", instance.mode if instance else TransportMode.LOCAL)
        url = attrs.get("webhook_url", instance.webhook_url if instance else "")
        if mode in WEBHOOK_MODES and not url:
            label = TransportMode(mode).label
            raise serializers.ValidationError(
                {"webhook_url": [f"A webhook URL is required for {label}."]}
            )
        return attrs


class TransportReferenceSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    mode_verbose = serializers.CharField(source="get_mode_display", read_only=True)

    class Meta:
        model = NotificationTransport
        fields = ["pk", "name", "mode", "mode_verbose"]


class GroupReferenceSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="group_uuid", read_only=True)

    class Meta:
        model = Group
        fields = ["pk", "num_pk", "name", "is_superuser"]


class NotificationRuleSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    destination_group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(),
        allow_null=True,
        required=False,
        help_text="The group whose active members are notified (its pk).",
    )
    destination_group_obj = GroupReferenceSerializer(
        source="destination_group", read_only=True, allow_null=True
    )
    transports = serializers.PrimaryKeyRelatedField(
        queryset=NotificationTransport.objects.all(),
        many=True,
        required=False,
        help_text="Transport pks; none: a notification in the drawer.",
    )
    transports_obj = TransportReferenceSerializer(source="transports", many=True, read_only=True)

    class Meta:
        model = NotificationRule
        fields = [
            "pk",
            "name",
            "enabled",
            "severity",
            "match",
            "destination_group",
            "destination_group_obj",
            "destination_event_user",
            "transports",
            "transports_obj",
        ]


class NotificationDeliverySerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    event = serializers.UUIDField(source="event_uuid", read_only=True, allow_null=True)
    mode_verbose = serializers.CharField(source="get_mode_display", read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = [
            "pk",
            "event",
            "event_action",
            "rule",
            "rule_name",
            "transport",
            "transport_name",
            "mode",
            "mode_verbose",
            "user",
            "username",
            "severity",
            "body",
            "hyperlink",
            "hyperlink_label",
            "notification",
            "status",
            "attempts",
            "last_error",
            "messages",
            "created",
            "updated",
            "finished",
        ]
        read_only_fields = fields


class TransportTestSerializer(serializers.Serializer):
    messages = serializers.ListField(child=serializers.CharField())


# --- Filters --------------------------------------------------------------------------------


class NotificationTransportFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(help_text="Exact name.")
    mode = django_filters.ChoiceFilter(choices=TransportMode.choices, help_text="Mode.")
    send_once = django_filters.BooleanFilter(help_text="Sends to the first recipient only.")

    class Meta:
        model = NotificationTransport
        fields: list[str] = []


class NotificationRuleFilter(django_filters.FilterSet):
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


class NotificationDeliveryFilter(django_filters.FilterSet):
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


# --- Views ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List notification transports"),
    retrieve=extend_schema(summary="One notification transport"),
    create=extend_schema(summary="Create a notification transport"),
)
class NotificationTransportViewSet(viewsets.ModelViewSet):
    """How notifications are sent: the drawer, a webhook, Slack/Discord or email."""

    queryset = NotificationTransport.objects.all()
    serializer_class = NotificationTransportSerializer
    filter_backends = [SearchFilter, DjangoFilterBackend, StableOrderingFilter]
    filterset_class = NotificationTransportFilter
    search_fields = ["name"]
    ordering = ["name"]
    ordering_fields = ["name", "mode", "uuid"]
    ordering_aliases = {"pk": "uuid"}
    action_permissions = {"test": ["auditlog.change_notificationtransport"]}

    @extend_schema(
        summary="Send a test notification to yourself",
        description="Sends now, without retries. 200 with what happened, or 503 with why the "
        "send failed.",
        request=None,
        responses={200: TransportTestSerializer, 503: TransportTestSerializer},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def test(self, request: Request, pk: str | None = None) -> Response:
        outcome = send_test(self.get_object(), request.user)  # type: ignore[arg-type]
        return Response(
            {"messages": outcome.messages},
            status=status.HTTP_200_OK if outcome.success else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


@extend_schema_view(
    list=extend_schema(summary="List notification rules"),
    retrieve=extend_schema(summary="One notification rule"),
    create=extend_schema(
        summary="Create a notification rule",
        description="match is a DjangoQL query over events (as in the event log's search); a "
        "malformed one is a 400 naming the problem and its position.",
    ),
)
class NotificationRuleViewSet(viewsets.ModelViewSet):
    """Which events notify whom, and how."""

    serializer_class = NotificationRuleSerializer
    filter_backends = [SearchFilter, DjangoFilterBackend, StableOrderingFilter]
    filterset_class = NotificationRuleFilter
    search_fields = ["name", "match"]
    ordering = ["name"]
    ordering_fields = ["name", "severity", "enabled", "uuid"]
    ordering_aliases = {"pk": "uuid"}

    def get_queryset(self) -> QuerySet[NotificationRule]:
        return NotificationRule.objects.select_related("destination_group").prefetch_related(
            "transports"
        )


@extend_schema_view(
    list=extend_schema(summary="List notification deliveries, newest first"),
    retrieve=extend_schema(summary="One notification delivery"),
)
class NotificationDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """What became of every notification a rule sent: sent, retrying, failed (with the last
    error) or skipped."""

    serializer_class = NotificationDeliverySerializer
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    filterset_class = NotificationDeliveryFilter
    ordering = ["-created"]
    ordering_fields = ["created", "updated", "status", "attempts", "uuid"]
    ordering_aliases = {"pk": "uuid"}

    def get_queryset(self) -> QuerySet[NotificationDelivery]:
        return NotificationDelivery.objects.select_related("user")
