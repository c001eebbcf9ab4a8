"""Top-level URLs: the web admin, the REST API under /api/v3/ and its schema."""

from django.contrib.auth.views import LogoutView
from django.urls import include, path

from auditlog.login import LoginView
from project.favicon import favicon

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("api/v3/", include("project.api_urls")),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("exports/", include("exports.urls")),
    path("searches/", include("searches.urls")),
    path("system/sources/", include("sources.urls")),
    path("system/logs/", include("logs.urls")),
    path("system/streams/", include("streams.urls")),
    path("", include("directory.urls")),
    path("", include("auditlog.urls")),
    path("", include("notifications.urls")),
]

handler404 = "project.errors.not_found"
handler500 = "project.errors.server_error"
