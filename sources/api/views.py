"""``/api/v3/sources/authentik/``: our own extension (authentik has no such endpoint) to
manage authentik sources and read their status, and the webhook receiver for authentik's
notification webhook transport.

The API token is write-only: never answered, not even masked. The webhook token is answered
once, when the source is created or ``webhook_token/`` makes a new one.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import URLValidator
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import StableOrderingFilter
from auditlog.api.serializers import StrictInputMixin
from auditlog.services import EventsRejected
from sources import secrets, services, tasks
from sources.models import AuthentikSource

WEBHOOK_HEADER = "X-Webhook-Token"


class AuthentikSourceSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A source as the API shows it; the body is held to the JSON types the schema documents
    (``verify_tls: 0`` is a 400, not false)."""

    pk = serializers.UUIDField(source="uuid", read_only=True)
    url = serializers.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")],
        help_text="The authentik instance, e.g. https://auth.example.com",
    )
    token = serializers.CharField(
        write_only=True,
        max_length=4096,
        trim_whitespace=True,
        help_text="authentik API token (needs events.view_event). Write-only: never answered.",
    )
    lag_seconds = serializers.SerializerMethodField()
    webhook_path = serializers.SerializerMethodField()

    class Meta:
        model = AuthentikSource
        fields = [
            "pk",
            "name",
            "url",
            "token",
            "enabled",
            "page_size",
            "verify_tls",
            "created",
            "position",
            "lag_seconds",
            "events_imported",
            "events_skipped",
            "events_pushed",
            "last_sync_started",
            "last_sync_finished",
            "last_success",
            "last_error",
            "last_error_at",
            "last_skip",
            "last_push",
            "webhook_path",
        ]
        read_only_fields = [
            "created",
            "position",
            "events_imported",
            "events_skipped",
            "events_pushed",
            "last_sync_started",
            "last_sync_finished",
            "last_success",
            "last_error",
            "last_error_at",
            "last_skip",
            "last_push",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None:  # keep the stored token unless a new one is sent
            self.fields["token"].required = False

    def get_lag_seconds(self, source: AuthentikSource) -> float | None:
        lag = source.lag
        return None if lag is None else round(lag.total_seconds(), 3)

    def get_webhook_path(self, source: AuthentikSource) -> str:
        return f"/api/v3/sources/authentik/{source.name}/webhook/"

    def create(self, validated_data: dict[str, Any]) -> AuthentikSource:
        source, webhook_token = services.create_source(**validated_data)
        source.new_webhook_token = webhook_token  # type: ignore[attr-defined]
        return source

    def update(self, instance: AuthentikSource, validated_data: dict[str, Any]) -> AuthentikSource:
        token = validated_data.pop("token", None)
        if token:
            instance.token = secrets.encrypt(token)
        return super().update(instance, validated_data)

    def to_representation(self, instance: AuthentikSource) -> dict[str, Any]:
        data = super().to_representation(instance)
        if hasattr(instance, "new_webhook_token"):
            data["webhook_token"] = instance.new_webhook_token
        return data


@extend_schema_view(
    list=extend_schema(summary="authentik sources and their sync status"),
    create=extend_schema(
        summary="Add an authentik source",
        description="The answer holds `webhook_token` this once; the API token is never answered.",
    ),
)
class AuthentikSourceViewSet(viewsets.ModelViewSet):
    """authentik instances whose events are imported (sources.*_authentiksource permissions)."""

    def get_success_headers(self, data: Any) -> dict[str, str]:
        # DRF would answer a create with Location: <the "url" field>: the authentik instance's
        # address, not this resource.
        return {}

    queryset = AuthentikSource.objects.all()
    serializer_class = AuthentikSourceSerializer
    filter_backends = [StableOrderingFilter]
    ordering = ["name"]
    ordering_fields = ["name", "created", "last_success", "events_imported"]
    action_permissions = {
        "sync": ["sources.change_authentiksource"],
        "webhook_token": ["sources.change_authentiksource"],
    }

    @extend_schema(
        summary="Sync now",
        description="Queue one sync (`?full=true`: read every event again).",
        request=None,
        responses={202: inline_serializer("SyncQueued", {"detail": serializers.CharField()})},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        full = request.query_params.get("full", "").lower() in ("1", "true", "yes")
        try:
            tasks.sync_source.delay(str(source.pk), full)
        except BrokerError:
            return Response(
                {"detail": "The background task queue is unavailable; try again later."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response({"detail": f"Sync of {source.name} queued."}, status=202)

    @extend_schema(
        summary="A new webhook token",
        description="The old one stops working; the new one is answered this once.",
        request=None,
        responses={
            200: inline_serializer("WebhookToken", {"webhook_token": serializers.CharField()})
        },
    )
    @action(detail=True, methods=["post"])
    def webhook_token(self, request: Request, pk: str | None = None) -> Response:
        return Response({"webhook_token": services.rotate_webhook_token(self.get_object())})


# --- The webhook receiver (a plain view: its token is the source's, not a user's) ----------


def _refuse(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)


def _presented_token(request: HttpRequest) -> str:
    header = request.headers.get(WEBHOOK_HEADER, "").strip()
    if header:
        return header
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, name: str) -> JsonResponse:
    """``POST /api/v3/sources/authentik/<name>/webhook/`` from authentik's webhook transport,
    with the source's webhook token in ``X-Webhook-Token`` (or ``Authorization: Bearer``)."""
    token = _presented_token(request)
    if not token:
        response = _refuse(
            401,
            f"Send the source's webhook token in the {WEBHOOK_HEADER} header "
            "(or Authorization: Bearer <token>).",
        )
        response["WWW-Authenticate"] = 'Bearer realm="webhook"'
        return response
    source = AuthentikSource.objects.filter(name=name).first()
    if source is None or not secrets.matches(token, source.webhook_token_digest):
        return _refuse(403, "The webhook token is not valid for this source.")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _refuse(400, "The body is not valid JSON.")
    try:
        stored, already = services.receive_webhook(source=source, body=body)
    except services.WebhookRejected as exc:
        return _refuse(400, str(exc))
    except EventsRejected as exc:
        return _refuse(400, f"The event is not valid: {exc.errors}")
    return JsonResponse(
        {"stored": stored, "already_stored": already}, status=201 if stored else 200
    )
