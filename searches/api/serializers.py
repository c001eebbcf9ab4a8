"""JSON shape of a saved search: what it searches, whose it is, whether it still runs."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from auditlog.api.serializers import StrictInputMixin
from searches.models import SavedSearch
from searches.services import problem_of_saved


class SavedSearchSerializer(StrictInputMixin, serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    pinned = serializers.BooleanField(required=False, help_text="Pinned to your navigation.")
    filters = serializers.JSONField(required=False, help_text="The event list's filters.")
    problem = serializers.SerializerMethodField(
        help_text="Why the search no longer runs (a field renamed since), or null."
    )
    link = serializers.SerializerMethodField(help_text="The event log with this search.")

    class Meta:
        model = SavedSearch
        fields = [
            "pk",
            "name",
            "query",
            "filters",
            "ordering",
            "shared",
            "pinned",
            "owner",
            "problem",
            "link",
            "created",
            "updated",
        ]
        read_only_fields = ["pk", "owner", "problem", "link", "created", "updated"]

    def get_problem(self, obj: SavedSearch) -> str | None:
        return problem_of_saved(obj)

    def get_link(self, obj: SavedSearch) -> str:
        return reverse("searches:saved-search-open", args=[obj.pk])

    def to_representation(self, instance: SavedSearch) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = self.context["request"].user
        data["pinned"] = instance.pinned_by.filter(pk=user.pk).exists()
        return data
