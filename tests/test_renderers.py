"""The API's fast JSON renderer writes what DRF's own renderer writes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from auditlog.models import Event
from auditlog.services import record_event
from project.renderers import FastJSONRenderer

DOCUMENT = {
    "pk": uuid.UUID("2c8d1a3e-0b1f-4a8e-9d3c-5f6e7a8b9c0d"),
    "created": datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
    "amount": Decimal("1.50"),
    "message": gettext_lazy("This field is required."),
    "errors": ReturnDict(
        {"action": [ErrorDetail("Unknown action.", code="invalid")]}, serializer=None
    ),
    "results": ReturnList(
        [{"n": 1, "unicode": "Zürich ✓", "nested": {"a": [None, True, 2.5]}}], serializer=None
    ),
    "big": 2**70,
}


def test_the_document_is_the_same_as_drfs() -> None:
    ours = FastJSONRenderer().render(DOCUMENT, "application/json")
    theirs = JSONRenderer().render(DOCUMENT, "application/json")
    assert json.loads(ours) == json.loads(theirs)
    assert json.loads(ours)["big"] == 2**70


def test_indented_json_is_still_indented() -> None:
    rendered = FastJSONRenderer().render({"a": 1}, "application/json; indent=4")
    assert rendered.decode() == '{\n    "a": 1\n}'


def test_nothing_renders_as_an_empty_body() -> None:
    assert FastJSONRenderer().render(None) == b""


@pytest.mark.django_db
def test_events_decode_their_json_exactly() -> None:
    context = {"big": 2**70, "text": "ä\u2028", "list": [1, 2.5, None, {"x": False}]}
    event = record_event(action="custom_test", app="tests", context=context)
    stored = Event.objects.get(pk=event.pk)
    assert stored.context == context
