"""System > Streams (web admin)."""

from django.urls import path

from streams import views

app_name = "streams"
urlpatterns = [
    path("", views.destination_list, name="destination-list"),
    path("new/", views.destination_form, name="destination-create"),
    path("<uuid:pk>/", views.destination_form, name="destination-edit"),
    path("<uuid:pk>/pause/", views.destination_pause, name="destination-pause"),
    path("<uuid:pk>/replay/", views.destination_replay, name="destination-replay"),
    path("<uuid:pk>/delete/", views.destination_delete, name="destination-delete"),
]
