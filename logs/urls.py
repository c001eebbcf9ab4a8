"""System > Logs (web admin)."""

from django.urls import path

from logs import views

app_name = "logs"
urlpatterns = [
    path("", views.log_list, name="log-list"),
    path("lines/", views.log_lines, name="log-lines"),
]
