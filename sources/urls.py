"""System > Sources (web admin)."""

from django.urls import path

from sources import views

app_name = "sources"
urlpatterns = [
    path("", views.source_list, name="source-list"),
    path("new/", views.source_form, name="source-create"),
    path("<uuid:pk>/", views.source_form, name="source-edit"),
    path("<uuid:pk>/delete/", views.source_delete, name="source-delete"),
    path("<uuid:pk>/sync/", views.source_sync, name="source-sync"),
    path("<uuid:pk>/webhook-token/", views.source_webhook_token, name="source-webhook-token"),
]
