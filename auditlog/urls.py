"""Web admin URLs of the event log."""

from django.urls import path

from auditlog import notification_views, views

app_name = "auditlog"
urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("events/map/", views.event_map, name="event-map"),
    path("events/search-help/", views.search_help, name="search-help"),
    path("events/<uuid:pk>/", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<uuid:pk>/info/", views.event_info, name="event-info"),
    path("notifications/drawer/", views.notification_drawer, name="notification-drawer"),
    path("events/rules/", notification_views.rule_list, name="rule-list"),
    path("events/rules/new/", notification_views.rule_form, name="rule-create"),
    path("events/rules/<uuid:pk>/", notification_views.rule_form, name="rule-edit"),
    path("events/rules/<uuid:pk>/delete/", notification_views.rule_delete, name="rule-delete"),
    path("events/transports/", notification_views.transport_list, name="transport-list"),
    path("events/transports/new/", notification_views.transport_form, name="transport-create"),
    path("events/transports/<uuid:pk>/", notification_views.transport_form, name="transport-edit"),
    path(
        "events/transports/<uuid:pk>/delete/",
        notification_views.transport_delete,
        name="transport-delete",
    ),
    path("system/settings/", views.system_settings, name="settings"),
]
