"""JSON shapes of notifications, transports, rules and deliveries.

A transport's ``webhook_url`` is a secret (Slack and Discord put the credential in the path):
it is answered as its scheme and host followed by the mask, and a masked value sent back
keeps the stored URL. A rule's ``match`` may be left out, as authentik's clients do (their
rules bind policies instead): such a rule matches no event until a match is set.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from auditlog.api.serializers import EventSerializer, StrictInputMixin
from auditlog.sanitize import MASK
from directory.api.serializers import GroupSerializer
from directory.models import Group
from notifications.models import (
    WEBHOOK_MODES,
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
    TransportMode,
    validate_webhook_url,
)
from searches.services import SavedSearchError, resolve_saved_search


class NotificationSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    event = EventSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = [
            "pk",
            "severity",
            "body",
            "hyperlink",
            "hyperlink_label",
            "created",
            "event",
            "seen",
        ]
        read_only_fields = ["severity", "body", "hyperlink", "hyperlink_label", "created", "event"]


def mask_webhook_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` → ``https://hooks.slack.com/****…``."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{MASK}"


class NotificationTransportSerializer(StrictInputMixin, serializers.ModelSerializer):
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


class NotificationRuleSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    destination_group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(),
        allow_null=True,
        required=False,
        help_text="The group whose active members are notified (its pk).",
    )
    # authentik's rule carries the group in its full shape (its client requires it).
    destination_group_obj = GroupSerializer(
        source="destination_group", read_only=True, allow_null=True
    )
    transports = serializers.PrimaryKeyRelatedField(
        queryset=NotificationTransport.objects.all(),
        many=True,
        required=False,
        help_text="Transport pks; none: a notification in the drawer.",
    )
    transports_obj = TransportReferenceSerializer(source="transports", many=True, read_only=True)
    # Our own extension: a saved search (its pk or name) whose query and filters become the
    # match; one that no longer parses is a 400 that says why.
    saved_search = serializers.CharField(
        write_only=True,
        required=False,
        max_length=200,
        help_text="A saved search (pk or name) you may use: its query becomes the match.",
    )

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
            "saved_search",
        ]
        # Optional, for authentik's clients (whose rules have no match): left out, the rule
        # matches no event until one is set. Sent, it must be a query.
        extra_kwargs = {
            "match": {
                "required": False,
                "allow_blank": False,
                "help_text": 'A DjangoQL query over events, e.g. action = "login_failed". Left '
                "out: empty, and the rule matches no event until one is set.",
            }
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        chosen = attrs.pop("saved_search", None)
        if chosen is not None:
            request = self.context.get("request")
            try:
                attrs["match"] = resolve_saved_search(chosen, getattr(request, "user", None))
            except SavedSearchError as exc:
                raise serializers.ValidationError({"saved_search": [str(exc)]}) from None
        return attrs


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


class TransportTestSerializer(StrictInputMixin, serializers.Serializer):
    messages = serializers.ListField(child=serializers.CharField())
