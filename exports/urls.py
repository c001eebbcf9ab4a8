"""Web URLs of the exports app (downloads go through an authenticated view)."""

from django.urls import path

from exports import views

app_name = "exports"
urlpatterns = [
    path("", views.export_list, name="export-list"),
    path("<uuid:pk>/download/", views.download, name="download"),
    path("saved-search/", views.export_saved_search, name="export-saved-search"),
]
