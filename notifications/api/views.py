"""``/api/v3/events/notifications/``, ``/events/transports/``, ``/events/rules/`` and
``/events/deliveries/``: the signed-in user's notifications, the transports that carry them,
the rules that send them, and the (read-only) record of every delivery."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.filters import SearchFilter, StableOrderingFilter
from auditlog.api.permissions import IsAuthenticated
from notifications.api.filters import (
    NotificationDeliveryFilter,
    NotificationFilter,
    NotificationRuleFilter,
    NotificationTransportFilter,
)
from notifications.api.serializers import (
    NotificationDeliverySerializer,
    NotificationRuleSerializer,
    NotificationSerializer,
    NotificationTransportSerializer,
    TransportTestSerializer,
)
from notifications.models import (
    Notification,
    NotificationDelivery,
    NotificationRule,
    NotificationTransport,
)
from notifications.services import send_test


@extend_schema_view(
    list=extend_schema(summary="Your notifications"),
    partial_update=extend_schema(
        summary="Mark a notification read", description='Send {"seen": true}.'
    ),
)
class NotificationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The signed-in user's notifications; nobody sees anyone else's."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    filterset_class = NotificationFilter
    ordering = ["-created"]
    ordering_fields = ["created", "severity", "seen", "uuid"]
    ordering_aliases = {"pk": "uuid"}

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return Notification.objects.for_user(self.request.user).select_related("event")

    @extend_schema(summary="Mark all your notifications read", request=None, responses={204: None})
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def mark_all_seen(self, request: Request) -> Response:
        Notification.objects.for_user(request.user).unseen().update(seen=True)
        return Response(status=status.HTTP_204_NO_CONTENT)


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
    action_permissions = {"test": ["notifications.change_notificationtransport"]}

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
