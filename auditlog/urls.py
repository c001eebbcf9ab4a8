"""Web admin URLs of the event log."""

from django.urls import path

from auditlog import views

app_name = "auditlog"
urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("events/", views.EventListView.as_view(), name="event-list"),
    path("events/map/", views.event_map, name="event-map"),
    path("events/chart/", views.event_chart, name="event-chart"),
    path("events/search-help/", views.search_help, name="search-help"),
    path("events/<uuid:pk>/", views.EventDetailView.as_view(), name="event-detail"),
    path("events/<uuid:pk>/info/", views.event_info, name="event-info"),
    path("system/settings/", views.system_settings, name="settings"),
]
