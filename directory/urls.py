"""Web admin URLs of the directory and the system pages."""

from django.urls import path

from directory import views

app_name = "directory"
urlpatterns = [
    path("directory/users/", views.UserListView.as_view(), name="user-list"),
    path("directory/users/<int:pk>/", views.UserDetailView.as_view(), name="user-detail"),
    path("directory/groups/", views.GroupListView.as_view(), name="group-list"),
    path("directory/groups/<uuid:pk>/", views.GroupDetailView.as_view(), name="group-detail"),
    path("directory/tokens/", views.TokenListView.as_view(), name="token-list"),
    path("directory/tokens/<slug:identifier>/delete/", views.delete_token, name="token-delete"),
    path("system/brands/", views.BrandListView.as_view(), name="brand-list"),
    path("system/brands/new/", views.brand_form, name="brand-create"),
    path("system/brands/<uuid:pk>/", views.brand_form, name="brand-edit"),
]
