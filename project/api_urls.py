"""``/api/v3/``: the routes authentik's clients know, plus the schema and its docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from auditlog.api.chain import EventChainViewSet
from auditlog.api.views import EventViewSet
from directory.api.views import GroupViewSet, TokenViewSet, UserViewSet
from exports.api.lists import EventExportView, UserExportView
from exports.api.views import DataExportViewSet
from notifications.api.views import (
    NotificationDeliveryViewSet,
    NotificationRuleViewSet,
    NotificationTransportViewSet,
    NotificationViewSet,
)
from project.api_docs import RedocView, redoc_script
from searches.api.views import SavedSearchViewSet
from sources.api.views import AuthentikSourceViewSet, webhook
from streams.api.views import DestinationViewSet


class Router(DefaultRouter):
    include_root_view = False


router = Router()
router.register("events/events", EventViewSet, basename="event")
router.register("events/notifications", NotificationViewSet, basename="notification")
router.register("events/transports", NotificationTransportViewSet, basename="notificationtransport")
router.register("events/rules", NotificationRuleViewSet, basename="notificationrule")
router.register("events/deliveries", NotificationDeliveryViewSet, basename="notificationdelivery")
router.register("events/chain", EventChainViewSet, basename="eventchain")
router.register("events/saved_searches", SavedSearchViewSet, basename="savedsearch")
router.register("core/users", UserViewSet, basename="user")
router.register("core/groups", GroupViewSet, basename="group")
router.register("core/tokens", TokenViewSet, basename="token")
router.register("reports/exports", DataExportViewSet, basename="dataexport")
router.register("sources/authentik", AuthentikSourceViewSet, basename="authentiksource")
router.register("streams/destinations", DestinationViewSet, basename="destination")

urlpatterns = [
    # Before the router: its detail routes would take "export" for a pk.
    path("events/events/export/", EventExportView.as_view(), name="event-export"),
    path("core/users/export/", UserExportView.as_view(), name="user-export"),
    path("sources/authentik/<str:name>/webhook/", webhook, name="authentik-webhook"),
    *router.urls,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Both pages run under the site's Content-Security-Policy (project/middleware.py): Swagger
    # UI's start-up script is served as a file of its own (?script) instead of inline, and
    # ReDoc's page and bundle are ours, without the CDN fonts and logo (project/api_docs.py).
    path(
        "schema/swagger/",
        SpectacularSwaggerSplitView.as_view(url_name="schema"),
        name="schema-swagger",
    ),
    path(
        "schema/redoc/",
        RedocView.as_view(url_name="schema"),
        name="schema-redoc",
    ),
    path("schema/redoc/redoc.standalone.js", redoc_script, name="schema-redoc-script"),
]
