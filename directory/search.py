"""Search schemas of the directory (same language as the event log)."""

from __future__ import annotations

from django.db import models

from auditlog.search import JSONSpec, SearchSchema, TimestampField, UUIDSearchField
from directory.models import Group, User


class UserSearchSchema(SearchSchema):
    fields = (
        "username",
        "name",
        "email",
        "is_active",
        "path",
        "type",
        "uuid",
        "last_login",
        "date_joined",
        "attributes",
    )
    json_fields = {"attributes": JSONSpec({})}
    field_classes = {
        "uuid": UUIDSearchField,
        "last_login": TimestampField,
        "date_joined": TimestampField,
    }
    text_search_fields = ("username", "name", "email", "uuid", "attributes")

    @classmethod
    def model_class(cls) -> type[models.Model]:
        return User


class GroupSearchSchema(SearchSchema):
    fields = ("name", "is_superuser", "num_pk", "attributes")
    json_fields = {"attributes": JSONSpec({})}
    text_search_fields = ("name",)

    @classmethod
    def model_class(cls) -> type[models.Model]:
        return Group
