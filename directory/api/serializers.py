"""Users, groups and tokens as authentik's API (and Elastic's integration) read them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from auditlog.api.filters import boolean_problem
from auditlog.api.serializers import JSONObjectField, StrictInputMixin
from directory.models import ANONYMOUS_USERNAME, Group, Token, TokenIntent, User
from directory.representation import (
    PARTIAL_GROUP_FIELDS,
    USER_FIELDS,
    include_flag,
    partial_group,
    user_roles,
    user_roles_obj,
)


def checked_flag(params: Any, name: str) -> bool:
    """A boolean query parameter such as include_groups (default true); anything but true or
    false, or the parameter given twice, is a 400 naming it."""
    values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name, "true")]
    if len(values) > 1:
        raise serializers.ValidationError({name: ["Give this parameter once."]})
    if values and (problem := boolean_problem(str(values[0]))):
        raise serializers.ValidationError({name: [problem]})
    return include_flag(params, name)


def query_flag(serializer: serializers.Serializer, name: str) -> bool:
    """:func:`checked_flag` of the serializer's request (default true without one)."""
    request = serializer.context.get("request")
    if request is None:
        return True
    return checked_flag(request.query_params, name)


class PartialGroupSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    attributes = JSONObjectField(read_only=True)

    class Meta:
        model = Group
        fields = list(PARTIAL_GROUP_FIELDS)

    def to_representation(self, instance: Group) -> dict[str, Any]:
        return partial_group(instance)


class RelatedGroupSerializer(serializers.ModelSerializer):
    """A parent or child group, as authentik's RelatedGroup."""

    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    attributes = JSONObjectField(read_only=True)

    class Meta:
        model = Group
        fields = ["pk", "name", "is_superuser", "attributes", "group_uuid"]


class PartialUserSerializer(serializers.ModelSerializer):
    pk = serializers.IntegerField(read_only=True)
    attributes = JSONObjectField(read_only=True)
    uid = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ["pk", "username", "name", "is_active", "last_login", "email", "attributes", "uid"]


class RoleSerializer(serializers.Serializer):
    pk = serializers.UUIDField()
    name = serializers.CharField()


class UserSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.IntegerField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    groups = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Group.objects.all(), required=False, help_text="Group pks (UUIDs)."
    )
    groups_obj = serializers.SerializerMethodField(help_text="null with include_groups=false.")
    roles = serializers.SerializerMethodField()
    roles_obj = serializers.SerializerMethodField(help_text="null with include_roles=false.")
    avatar = serializers.CharField(read_only=True)
    attributes = JSONObjectField(required=False)
    uid = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = list(USER_FIELDS)
        read_only_fields = [
            "last_login",
            "uuid",
            "password_change_date",
            "date_joined",
            "last_updated",
        ]

    @extend_schema_field(PartialGroupSerializer(many=True, allow_null=True))
    def get_groups_obj(self, user: User) -> list[dict[str, Any]] | None:
        if not query_flag(self, "include_groups"):
            return None
        return PartialGroupSerializer(user.groups.all(), many=True).data  # type: ignore[return-value]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_roles(self, user: User) -> list[str]:
        return user_roles(user)

    @extend_schema_field(RoleSerializer(many=True, allow_null=True))
    def get_roles_obj(self, user: User) -> list[dict[str, Any]] | None:
        return user_roles_obj(user, include=query_flag(self, "include_roles"))

    def validate_username(self, value: str) -> str:
        if value == ANONYMOUS_USERNAME:
            raise serializers.ValidationError(f"{ANONYMOUS_USERNAME!r} is reserved.")
        return value

    def validate_groups(self, groups: list[Group]) -> list[Group]:
        # Joining or leaving a superuser group changes who is an administrator.
        before = set(self.instance.groups.all()) if self.instance is not None else set()
        changed = before.symmetric_difference(groups)
        if any(group.is_superuser for group in changed):
            require_superuser(self, "Only administrators can change superuser group memberships.")
        return groups


def require_superuser(serializer: serializers.Serializer, message: str) -> None:
    request = serializer.context.get("request")
    if request is not None and not getattr(request.user, "is_superuser", False):
        raise PermissionDenied(message)


class GroupSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="group_uuid", read_only=True)
    num_pk = serializers.IntegerField(read_only=True)
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Group.objects.all(), allow_null=True, required=False
    )
    # A method, not source="parent.name" with a default: DRF drops a defaulted field from the
    # answer to a PATCH (partial), and clients rely on it always being there.
    parent_name = serializers.SerializerMethodField()
    # authentik's groups have several parents; ours have at most one, so ``parents`` is a
    # list of zero or one group (``parent`` is the same, from authentik before 2026).
    parents = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Group.objects.all(),
        required=False,
        help_text="The parent group's pk, in a list (at most one parent).",
    )
    parents_obj = serializers.SerializerMethodField(help_text="null with include_parents=false.")
    users = serializers.PrimaryKeyRelatedField(
        many=True, queryset=User.objects.exclude_anonymous(), required=False, help_text="User pks."
    )
    users_obj = serializers.SerializerMethodField(help_text="null with include_users=false.")
    attributes = JSONObjectField(required=False)
    roles = serializers.SerializerMethodField()
    roles_obj = serializers.SerializerMethodField()
    inherited_roles_obj = serializers.SerializerMethodField(
        help_text="null with include_inherited_roles=false."
    )
    children = serializers.SerializerMethodField()
    children_obj = serializers.SerializerMethodField(help_text="null with include_children=false.")

    class Meta:
        model = Group
        fields = [
            "pk",
            "num_pk",
            "name",
            "is_superuser",
            "parent",
            "parent_name",
            "parents",
            "parents_obj",
            "users",
            "users_obj",
            "attributes",
            "roles",
            "roles_obj",
            "inherited_roles_obj",
            "children",
            "children_obj",
        ]

    def to_representation(self, instance: Group) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["parents"] = [str(instance.parent_id)] if instance.parent_id else []
        return data

    @extend_schema_field(RelatedGroupSerializer(many=True, allow_null=True))
    def get_parents_obj(self, group: Group) -> list[dict[str, Any]] | None:
        if not query_flag(self, "include_parents"):
            return None
        parents = [group.parent] if group.parent is not None else []
        return RelatedGroupSerializer(parents, many=True).data  # type: ignore[return-value]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_children(self, group: Group) -> list[str]:
        return [str(child.pk) for child in _children(group)]

    @extend_schema_field(RelatedGroupSerializer(many=True, allow_null=True))
    def get_children_obj(self, group: Group) -> list[dict[str, Any]] | None:
        if not query_flag(self, "include_children"):
            return None
        return RelatedGroupSerializer(_children(group), many=True).data  # type: ignore[return-value]

    @extend_schema_field(RoleSerializer(many=True, allow_null=True))
    def get_inherited_roles_obj(self, group: Group) -> list[dict[str, Any]] | None:
        return [] if query_flag(self, "include_inherited_roles") else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_parent_name(self, group: Group) -> str | None:
        return group.parent.name if group.parent is not None else None

    @extend_schema_field(PartialUserSerializer(many=True, allow_null=True))
    def get_users_obj(self, group: Group) -> list[dict[str, Any]] | None:
        if not query_flag(self, "include_users"):
            return None
        return PartialUserSerializer(group.users.all(), many=True).data  # type: ignore[return-value]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_roles(self, group: Group) -> list[str]:
        return []

    @extend_schema_field(RoleSerializer(many=True))
    def get_roles_obj(self, group: Group) -> list[dict[str, Any]]:
        return []

    def validate_parents(self, parents: list[Group]) -> list[Group]:
        if len(parents) > 1:
            raise serializers.ValidationError("A group has at most one parent here.")
        return parents

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("is_superuser") or getattr(self.instance, "is_superuser", False):
            require_superuser(self, "Only administrators can change superuser groups.")
        if "parents" in attrs:
            parents = attrs.pop("parents")
            parent = parents[0] if parents else None
            if "parent" in attrs and attrs["parent"] != parent:
                raise serializers.ValidationError(
                    {"parents": ["parent and parents name different groups."]}
                )
            attrs["parent"] = parent
        parent = attrs.get("parent")
        if parent is not None and self.instance is not None:
            node: Group | None = parent
            while node is not None:
                if node.pk == self.instance.pk:
                    raise serializers.ValidationError(
                        {"parent": ["A group cannot be its own ancestor."]}
                    )
                node = node.parent
        return attrs


def _children(group: Group) -> list[Group]:
    """The group's children by name (prefetched by the view's queryset)."""
    return sorted(group.children.all(), key=lambda child: child.name)


class UserPkSerializer(StrictInputMixin, serializers.Serializer):
    pk = serializers.IntegerField(help_text="The user's pk.")


class PasswordSerializer(StrictInputMixin, serializers.Serializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate_password(self, value: str) -> str:
        user = self.context.get("user")
        try:
            validate_password(value, user=user)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None
        return value


class TokenSerializer(StrictInputMixin, serializers.ModelSerializer):
    pk = serializers.UUIDField(source="token_uuid", read_only=True)
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.exclude_anonymous(), required=False, help_text="Defaults to you."
    )
    user_obj = UserSerializer(source="user", read_only=True)
    intent = serializers.ChoiceField(
        choices=[TokenIntent.API, TokenIntent.APP_PASSWORD], default=TokenIntent.API
    )

    class Meta:
        model = Token
        fields = [
            "pk",
            "managed",
            "identifier",
            "intent",
            "user",
            "user_obj",
            "description",
            "expires",
            "expiring",
        ]
        read_only_fields = ["managed"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        request = self.context["request"]
        owner = attrs.get("user") or getattr(self.instance, "user", None) or request.user
        if owner != request.user:
            require_superuser(self, "Only administrators can manage other users' tokens.")
        attrs["user"] = owner
        if attrs.get("expiring", True) is False:
            attrs["expires"] = None
        return attrs


class TokenKeySerializer(serializers.Serializer):
    key = serializers.CharField()
