"""Web admin URLs of saved searches."""

from django.urls import path

from searches import views

app_name = "searches"
urlpatterns = [
    path("", views.saved_search_list, name="saved-search-list"),
    path("new/", views.saved_search_create, name="saved-search-create"),
    path("<int:pk>/", views.SavedSearchOpenView.as_view(), name="saved-search-open"),
    path("<int:pk>/edit/", views.saved_search_update, name="saved-search-update"),
    path("<int:pk>/delete/", views.saved_search_delete, name="saved-search-delete"),
    path("<int:pk>/pin/", views.saved_search_pin, name="saved-search-pin"),
]
