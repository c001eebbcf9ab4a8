"""Web admin URLs of the notification pages (their paths predate the app and are kept)."""

from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("notifications/drawer/", views.notification_drawer, name="notification-drawer"),
    path("events/rules/", views.rule_list, name="rule-list"),
    path("events/rules/new/", views.rule_form, name="rule-create"),
    path("events/rules/<uuid:pk>/", views.rule_form, name="rule-edit"),
    path("events/rules/<uuid:pk>/delete/", views.rule_delete, name="rule-delete"),
    path("events/transports/", views.transport_list, name="transport-list"),
    path("events/transports/new/", views.transport_form, name="transport-create"),
    path("events/transports/<uuid:pk>/", views.transport_form, name="transport-edit"),
    path("events/transports/<uuid:pk>/delete/", views.transport_delete, name="transport-delete"),
]
