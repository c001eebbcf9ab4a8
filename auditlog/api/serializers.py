"""JSON shapes of events and notifications, exactly as authentik's API returns them."""

from __future__ import annotations

import ipaddress
from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from auditlog.models import Event, Notification, is_valid_action
from auditlog.sanitize import model_to_dict, sanitize


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JSONObjectField(serializers.JSONField):
    """A JSON object (never a list or a scalar); ``{}`` when empty."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        return value

    def to_representation(self, value: Any) -> Any:
        return value if value is not None else {}


class EventSerializer(serializers.ModelSerializer):
    """``pk, user, action, app, context, client_ip, created, expires, brand``."""

    pk = serializers.UUIDField(source="event_uuid", read_only=True)
    user = JSONObjectField(required=False)
    action = serializers.CharField(
        help_text="An event action (see actions/), or custom_<name> for your own."
    )
    app = serializers.CharField(max_length=255)
    # DRF pops declared fields off the class, so this does not shadow Serializer.context.
    context = JSONObjectField(required=False)  # type: ignore[assignment]
    client_ip = serializers.CharField(allow_null=True, required=False, max_length=64)
    created = serializers.DateTimeField(read_only=True)
    expires = serializers.DateTimeField(read_only=True)
    brand = JSONObjectField(required=False)

    class Meta:
        model = Event
        fields = [
            "pk",
            "user",
            "action",
            "app",
            "context",
            "client_ip",
            "created",
            "expires",
            "brand",
        ]

    def validate_action(self, value: str) -> str:
        if not is_valid_action(value):
            raise serializers.ValidationError(
                f"{value!r} is not a known action; use one of actions/ or custom_<name>."
            )
        return value

    def validate_client_ip(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise serializers.ValidationError(f"{value!r} is not a valid IP address.") from None

    def create(self, validated_data: dict[str, Any]) -> Event:
        """Ingest one event: the server sets pk, created and expires; the JSON is sanitised."""
        request = cast("dict[str, Any]", self.context).get("request")
        event = Event(
            action=validated_data["action"],
            app=validated_data["app"],
            user=sanitize(validated_data.get("user") or {}),
            context=sanitize(validated_data.get("context") or {}),
            client_ip=validated_data.get("client_ip"),
        )
        if "brand" in validated_data:
            event.brand = sanitize(validated_data["brand"])
        elif request is not None and getattr(request, "brand", None):
            event.brand = model_to_dict(request.brand)
        event.save()
        return event


class NotificationSerializer(serializers.ModelSerializer):
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


class ActionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    component = serializers.CharField()
    model_name = serializers.CharField()


class TopPerUserSerializer(serializers.Serializer):
    application = serializers.DictField()
    counted_events = serializers.IntegerField()
    unique_users = serializers.IntegerField()


class VolumeSerializer(serializers.Serializer):
    action = serializers.CharField()
    time = serializers.DateTimeField()
    count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    unique_users = serializers.IntegerField()
    count_step = serializers.DictField(child=serializers.IntegerField())
