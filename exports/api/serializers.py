"""JSON of data exports, and the CSV files' columns as serializers (the columns themselves are
``auditlog.representation`` / ``directory.representation``'s, which the writers use; these
serializers are the field-by-field reference the tests compare the files with)."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.text import capfirst
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from auditlog.api.serializers import EventSerializer, JSONObjectField
from auditlog.representation import EVENT_CSV_COLUMNS
from directory.api.serializers import PartialUserSerializer, UserSerializer
from directory.models import User
from directory.representation import USER_CSV_COLUMNS, join_group_names
from exports.models import DataExport


class EventExportSerializer(EventSerializer):
    """The event CSV's columns: the event fields without ``user``, then the user's pk,
    username and email."""

    user_pk = serializers.IntegerField(source="user.pk", default=None, read_only=True)
    username = serializers.CharField(source="user.username", default=None, read_only=True)
    email = serializers.CharField(source="user.email", default=None, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = list(EVENT_CSV_COLUMNS)


class UserExportSerializer(UserSerializer):
    """The user CSV's columns: the user fields without ``groups_obj`` and ``is_superuser``;
    ``groups`` are the group names, comma separated."""

    groups = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta(UserSerializer.Meta):
        fields = list(USER_CSV_COLUMNS)

    def get_groups(self, user: User) -> str:
        return join_group_names(group.name for group in user.groups.all())


class ContentTypeSerializer(serializers.ModelSerializer):
    verbose_name_plural = serializers.SerializerMethodField()
    fully_qualified_model = serializers.SerializerMethodField(help_text="app_label.model")

    class Meta:
        model = ContentType
        fields = ["id", "app_label", "model", "verbose_name_plural", "fully_qualified_model"]

    def get_fully_qualified_model(self, content_type: ContentType) -> str:
        return f"{content_type.app_label}.{content_type.model}"

    def get_verbose_name_plural(self, content_type: ContentType) -> str:
        model = content_type.model_class()
        if model is None:
            return content_type.model
        return capfirst(str(model._meta.verbose_name_plural))


class DataExportSerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField(
        help_text="The requester; the anonymous stand-in once the requester is deleted."
    )
    content_type = ContentTypeSerializer(read_only=True)
    query_params = JSONObjectField(read_only=True)
    file_url = serializers.SerializerMethodField(
        help_text='The authenticated download URL once the export is ready, else "".'
    )
    row_count = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = DataExport
        fields = [
            "id",
            "requested_by",
            "requested_on",
            "content_type",
            "query_params",
            "file_url",
            "completed",
            "status",
            "error",
            "row_count",
            "format",
        ]
        read_only_fields = fields

    @extend_schema_field(PartialUserSerializer)
    def get_requested_by(self, export: DataExport) -> dict[str, Any]:
        # authentik's schema requires a user here; this product keeps an export whose
        # requester was deleted, and names the anonymous stand-in for them.
        requester = export.requested_by or User.objects.anonymous()  # type: ignore[attr-defined]
        return PartialUserSerializer(requester).data  # type: ignore[return-value]

    @extend_schema_field(serializers.CharField())
    def get_file_url(self, export: DataExport) -> str:
        return export.download_url if export.is_ready else ""
