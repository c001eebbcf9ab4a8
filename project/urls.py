"""Top-level URLs: the web admin, the REST API under /api/v3/ and its schema."""

from django.urls import include, path

urlpatterns = [
    path("api/v3/", include("project.api_urls")),
    path("exports/", include("exports.urls")),
]
