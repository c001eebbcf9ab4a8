"""JSON shapes of events, exactly as authentik's API returns them."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from auditlog import compat
from auditlog.models import Event
from auditlog.representation import EVENT_FIELDS, event_json
from auditlog.sanitize import model_to_dict
from auditlog.services import ValidEvent, ingest_event, validate_event_item


@extend_schema_field({"type": "object", "additionalProperties": {}})
class JSONObjectField(serializers.JSONField):
    """A JSON object (never a list or a scalar); ``{}`` when empty.

    NUL characters are refused (PostgreSQL cannot store them in JSON), unless ``sanitized``
    says the value goes through the redaction policy, which removes them, before it is stored.
    """

    def __init__(self, *args: Any, sanitized: bool = False, **kwargs: Any) -> None:
        self.sanitized = sanitized
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        if not self.sanitized and _has_nul(value):
            raise serializers.ValidationError("Null characters are not allowed.")
        return value

    def to_representation(self, value: Any) -> Any:
        return value if value is not None else {}


def _has_nul(value: Any) -> bool:
    """Whether a NUL character is in any key or string of a JSON value (iteratively)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class StrictInputMixin:
    """Holds a JSON body to the types the schema documents: DRF would turn a number into a
    string, 0/1 into a boolean, "5" into an integer and "" into null for a related object,
    so a request the schema calls invalid would be accepted; here each is a 400 naming the
    field."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        self.refuse_mistyped(data)
        return super().to_internal_value(data)  # type: ignore[misc]

    def refuse_mistyped(self, data: Any) -> None:
        """A 400 naming each field whose JSON type is not the documented one."""
        if errors := self.type_problems(data):
            raise serializers.ValidationError(errors)

    def type_problems(self, data: Any) -> dict[str, list[str]]:
        """Each field of ``data`` whose JSON type is not the documented one (empty: none)."""
        if not isinstance(data, dict):
            return {}
        return {
            name: [problem]
            for name, field in self.fields.items()
            if not field.read_only
            and name in data
            and (problem := _type_problem(field, data[name])) is not None
        }


def _type_problem(field: serializers.Field, value: Any) -> str | None:
    if value is None:
        return None  # the field itself says whether null is allowed
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Not a valid string."
    # The schema's maxLength is of the value sent; DRF measures it after trimming.
    limit = field.max_length if isinstance(field, serializers.CharField) else None
    if limit is not None and len(value) > limit:
        return f"Ensure this field has no more than {limit} characters."
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Must be true or false."
    if isinstance(field, serializers.IntegerField) and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        return "A valid integer is required."
    if isinstance(field, serializers.ManyRelatedField | serializers.ListField) and not isinstance(
        value, list
    ):
        return "Expected a list of items."
    if isinstance(field, serializers.RelatedField) and value == "":
        return "This field may not be blank (null means none)."
    return None


class EventSerializer(StrictInputMixin, serializers.ModelSerializer):
    """``pk, user, action, app, context, client_ip, created, expires, brand``."""

    pk = serializers.UUIDField(source="event_uuid", read_only=True)
    user = JSONObjectField(required=False, sanitized=True)
    action = serializers.CharField(
        help_text="An event action (see actions/), or custom_<name> for your own."
    )
    app = serializers.CharField(max_length=255)
    # DRF pops declared fields off the class, so this does not shadow Serializer.context.
    context = JSONObjectField(required=False, sanitized=True)  # type: ignore[assignment]
    # "" is accepted as "no address", like null.
    client_ip = serializers.CharField(
        allow_null=True, allow_blank=True, required=False, max_length=64
    )
    created = serializers.DateTimeField(read_only=True)
    expires = serializers.DateTimeField(read_only=True)
    brand = JSONObjectField(required=False, sanitized=True)

    class Meta:
        model = Event
        fields = list(EVENT_FIELDS)

    def to_representation(self, instance: Event) -> dict[str, Any]:
        """The same JSON as DRF's field-by-field rendering (a test compares the two), built
        directly: listing a thousand events is the API's hottest path. Subclasses with other
        fields (the export's) render field by field."""
        if type(self) is not EventSerializer:
            return super().to_representation(instance)
        data = cast("dict[str, Any]", event_json(instance))
        # A stored action newer than the target release is answered as the target's (compat).
        data["action"], data["context"] = compat.action_for_client(instance.action, data["context"])
        return data

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """The recording service's validation, the same as a batch's (the declared fields
        above describe the shape for the schema)."""
        self.refuse_mistyped(data)
        problems, event = validate_event_item(data, refuse_unknown=False)
        if event is None:
            raise serializers.ValidationError(problems)
        return dict(event)

    def create(self, validated_data: dict[str, Any]) -> Event:
        """Ingest one event: the server sets pk, created and expires; the service redacts it."""
        request = cast("dict[str, Any]", self.context).get("request")
        request_brand = getattr(request, "brand", None) if request is not None else None
        return ingest_event(
            cast("ValidEvent", validated_data),
            brand=model_to_dict(request_brand) if request_brand else None,
        )


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    pks = serializers.ListField(child=serializers.UUIDField())


class ActionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    component = serializers.CharField()
    model_name = serializers.CharField()


class TopPerUserSerializer(serializers.Serializer):
    application = serializers.DictField()
    counted_events = serializers.IntegerField()
    unique_users = serializers.IntegerField()


class VolumeSerializer(serializers.Serializer):
    action = serializers.CharField()
    time = serializers.DateTimeField()
    count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    unique_users = serializers.IntegerField()
    count_step = serializers.DictField(child=serializers.IntegerField())
