"""``/api/v3/streams/destinations/``: our own extension (authentik has none) to manage SIEM
stream destinations, pause, resume or replay them, and read their health.

The authentication header value and the signing key are write-only: never answered, not even
masked (``has_auth_header``/``has_signing_key`` say whether one is stored).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import StableOrderingFilter
from auditlog.api.serializers import StrictInputMixin
from auditlog.positions import PositionError, parse_position
from searches.services import SavedSearchError, resolve_saved_search
from streams import services
from streams.models import SECRET_FIELDS, Destination


class HealthSerializer(serializers.Serializer):
    """A destination's health (``streams.services.Health``)."""

    lag_events = serializers.IntegerField(
        help_text="Matching events sealed after the position (counted up to 100,000)."
    )
    lag_events_exact = serializers.BooleanField(help_text="False when the count stopped.")
    lag_seconds = serializers.FloatField(help_text="Age of the oldest of them (0: caught up).")
    last_success = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(help_text="The receiver's own words; empty when healthy.")
    last_error_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    retry_at = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField(help_text="The last chain sequence looked at.")
    head = serializers.IntegerField(help_text="The last sealed chain sequence.")


class DestinationSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="uuid", read_only=True)
    auth_header_value = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=4096,
        help_text="The authentication header's value (e.g. `Splunk <token>`). Write-only.",
    )
    signing_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=4096,
        help_text="HMAC-SHA256 key that signs each JSON record (`hmac`). Write-only.",
    )
    # A saved search (pk or name) whose query and filters become the filter; one that no
    # longer parses is a 400 that says why.
    saved_search = serializers.CharField(
        write_only=True,
        required=False,
        max_length=200,
        help_text="A saved search (pk or name) you may use: its query becomes the filter.",
    )
    has_auth_header = serializers.SerializerMethodField()
    has_signing_key = serializers.SerializerMethodField()
    health = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "pk",
            "name",
            "paused",
            "filter",
            "format",
            "transport",
            "batch_size",
            "url",
            "http_shape",
            "auth_header_name",
            "auth_header_value",
            "has_auth_header",
            "host",
            "port",
            "ca_file",
            "client_cert",
            "client_key",
            "verify_tls",
            "path",
            "max_bytes",
            "backups",
            "storage_alias",
            "object_prefix",
            "signing_key",
            "has_signing_key",
            "saved_search",
            "created",
            "position",
            "last_sent_sequence",
            "events_sent",
            "health",
        ]
        read_only_fields = ["created", "position", "last_sent_sequence", "events_sent"]

    def get_has_auth_header(self, destination: Destination) -> bool:
        return bool(destination.auth_header_value)

    def get_has_signing_key(self, destination: Destination) -> bool:
        return bool(destination.signing_key)

    @extend_schema_field(HealthSerializer)
    def get_health(self, destination: Destination) -> dict[str, Any]:
        return services.health(destination).as_json()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        chosen = attrs.pop("saved_search", None)
        if chosen is not None:
            request = self.context.get("request")
            try:
                attrs["filter"] = resolve_saved_search(chosen, getattr(request, "user", None))
            except SavedSearchError as exc:
                raise serializers.ValidationError({"saved_search": [str(exc)]}) from None
        values = {k: v for k, v in attrs.items() if k not in SECRET_FIELDS}
        candidate = Destination(**{**self._current(), **values})
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        return {
            field.attname: getattr(self.instance, field.attname)
            for field in Destination._meta.concrete_fields
            if field.attname not in SECRET_FIELDS
        }

    def _save(self, instance: Destination, validated_data: dict[str, Any]) -> Destination:
        secrets_given = {name: validated_data.pop(name, None) for name in SECRET_FIELDS}
        for name, value in validated_data.items():
            setattr(instance, name, value)
        services.set_secrets(instance, **secrets_given)
        instance.save_configuration()
        return instance

    def create(self, validated_data: dict[str, Any]) -> Destination:
        return self._save(Destination(), validated_data)

    def update(self, instance: Destination, validated_data: dict[str, Any]) -> Destination:
        return self._save(instance, validated_data)


class ReplaySerializer(serializers.Serializer):
    from_time = serializers.CharField(required=False, help_text="ISO 8601 time.")
    from_position = serializers.CharField(required=False, help_text="A chain sequence.")


Done = inline_serializer("StreamDone", {"detail": serializers.CharField()})


@extend_schema_view(
    list=extend_schema(summary="Stream destinations and their health"),
    create=extend_schema(summary="Add a stream destination"),
)
class DestinationViewSet(viewsets.ModelViewSet):
    """SIEM stream destinations (streams.*_destination permissions)."""

    def get_success_headers(self, data: Any) -> dict[str, str]:
        # DRF would answer a create with Location: <the "url" field>, which here is the
        # receiver's address, not this resource (and arbitrary text for a file destination).
        return {}

    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    filter_backends = [StableOrderingFilter]
    ordering = ["name"]
    ordering_fields = ["name", "created", "last_success", "events_sent"]
    action_permissions = {
        "pause": ["streams.change_destination"],
        "resume": ["streams.change_destination"],
        "replay": ["streams.change_destination"],
        "health": ["streams.view_destination"],
    }

    @extend_schema(summary="Pause", request=None, responses={200: Done})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        destination = self.get_object()
        services.pause(destination)
        return Response({"detail": f"Stream {destination.name} paused."})

    @extend_schema(summary="Resume", request=None, responses={200: Done})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        destination = self.get_object()
        services.resume(destination)
        return Response({"detail": f"Stream {destination.name} resumed."})

    @extend_schema(
        summary="Replay",
        description="Send again from `from_position` (a chain sequence, inclusive) or from the "
        "first event created at or after `from_time`. Give exactly one.",
        request=ReplaySerializer,
        responses={
            200: inline_serializer("StreamReplayed", {"position": serializers.IntegerField()})
        },
    )
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        destination = self.get_object()
        data = request.data if isinstance(request.data, dict) else {}
        try:
            from_time, from_position = parse_replay(
                data.get("from_time"), data.get("from_position")
            )
        except ValueError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        position = services.replay(destination, from_time=from_time, from_position=from_position)
        return Response({"position": position})

    @extend_schema(summary="Health", responses={200: HealthSerializer})
    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        return Response(services.health(self.get_object()).as_json())


def parse_replay(raw_time: Any, raw_position: Any) -> tuple[Any, int | None]:
    """(from_time, from_position) from text; ``ValueError`` saying what is wrong."""
    if (raw_time in (None, "")) == (raw_position in (None, "")):
        raise ValueError("Give exactly one of from_time and from_position.")
    if raw_position not in (None, ""):
        try:
            return None, parse_position(str(raw_position), name="from_position")
        except PositionError as exc:
            raise ValueError(str(exc)) from None
    moment = parse_datetime(str(raw_time))
    if moment is None:
        raise ValueError(f"from_time must be an ISO 8601 time, not {raw_time!r}.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, None
