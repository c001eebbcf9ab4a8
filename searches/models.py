"""Saved searches: a named event search (DjangoQL or plain text), its filters and its order,
kept by its owner, optionally shared with everyone who may read events, and pinned to the
navigation per user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

PUBLISH_PERMISSION = "searches.publish_savedsearch"


class SavedSearchQuerySet(models.QuerySet["SavedSearch"]):
    def visible_to(self, user: Any) -> SavedSearchQuerySet:
        """The user's own saved searches and the shared ones."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self.filter(Q(owner=user) | Q(shared=True))

    def pinned_by(self, user: Any) -> SavedSearchQuerySet:
        return self.visible_to(user).filter(pinned_by=user)


class SavedSearch(models.Model):
    """One event search, as the event log's query string would carry it."""

    name = models.TextField()
    query = models.TextField(blank=True, default="", help_text="DjangoQL or plain text.")
    # The event list's filter parameters (action, username, ...): one value, or a list.
    filters = models.JSONField(default=dict, blank=True)
    ordering = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches"
    )
    shared = models.BooleanField(
        default=False, help_text="Everyone who may read events sees it (needs the permission)."
    )
    pinned_by = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="pinned_searches"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = SavedSearchQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="searches_unique_owner_name")
        ]
        permissions = [("publish_savedsearch", "Can publish shared saved searches")]

    def __str__(self) -> str:
        return f"Saved search {self.name}"

    def params(self) -> dict[str, str | list[str]]:
        """The event list's query parameters that restore this search."""
        params: dict[str, str | list[str]] = {}
        if self.query:
            params["search"] = self.query
        for key, value in (self.filters or {}).items():
            params[str(key)] = (
                [str(item) for item in value] if isinstance(value, list) else str(value)
            )
        if self.ordering:
            params["ordering"] = self.ordering
        return params
