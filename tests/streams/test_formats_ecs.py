"""ECS: every field the stream emits outside its custom namespaces is an ECS 8.11 field of the
right type (checked against ECS's own field definitions, ``ecs_flat.yml``, of which the
field sets used are vendored), categorization values are ECS's allowed ones, and the mapping
is the one Elastic's authentik integration applies."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from directory.models import User
from streams.formats import get_format
from streams.formats.ecs import CATEGORIZATION, ECS_VERSION, ecs_document
from tests.streams.format_samples import PUBLIC_IP, PUBLIC_IPV6, sample_records

pytestmark = pytest.mark.django_db

ECS = json.loads((Path(__file__).parent / "ecs_fields_8.11.0.json").read_text())
FIELDS: dict[str, dict[str, Any]] = ECS["fields"]
CUSTOM = ("authentik.", "auditlog.")
# Types whose value is an object in the document (so flattening stops there).
OBJECT_TYPES = {"geo_point", "flattened", "object"}


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        name = prefix + key
        if isinstance(value, dict) and FIELDS.get(name, {}).get("type") not in OBJECT_TYPES:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _is_datetime(value: Any) -> bool:
    try:
        return isinstance(value, str) and "T" in value and bool(datetime.fromisoformat(value))
    except ValueError:
        return False


def _is_ip(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(ipaddress.ip_address(value))
    except ValueError:
        return False


TYPE_CHECKS = {
    "keyword": lambda v: isinstance(v, str),
    "constant_keyword": lambda v: isinstance(v, str),
    "wildcard": lambda v: isinstance(v, str),
    "match_only_text": lambda v: isinstance(v, str),
    "date": _is_datetime,
    "ip": _is_ip,
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "geo_point": lambda v: (
        isinstance(v, dict)
        and set(v) == {"lat", "lon"}
        and all(isinstance(n, int | float) for n in v.values())
    ),
}


def ecs_problems(document: dict[str, Any]) -> list[str]:
    """Every way ``document`` is not valid ECS 8.11 (empty when it is)."""
    problems = []
    for name, value in flatten(document).items():
        if name.startswith(CUSTOM):
            continue
        definition = FIELDS.get(name)
        if definition is None:
            problems.append(f"{name} is not an ECS field")
            continue
        is_array = "array" in definition.get("normalize", [])
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not is_array and len(value) > 1:
            problems.append(f"{name} holds several values")
        for item in values:
            if not TYPE_CHECKS[definition["type"]](item):
                problems.append(f"{name}={item!r} is not a {definition['type']}")
            allowed = definition.get("allowed_values")
            if allowed is not None and item not in allowed:
                problems.append(f"{name}={item!r} is not one of ECS's values")
    event = document.get("event", {})
    for category in event.get("category", []):
        expected = FIELDS["event.category"]["allowed_values"].get(category, [])
        for kind in event.get("type", []):
            if kind not in expected:
                problems.append(f"event.type {kind!r} is not expected with category {category!r}")
    return problems


@pytest.fixture
def samples(admin_user: User, geoip_dbs: Any) -> dict[str, Any]:
    return sample_records(admin_user)


def test_every_action_is_valid_ecs(samples: dict[str, Any]) -> None:
    assert ECS["version"] == ECS_VERSION
    ecs = get_format("ecs")
    for name, record in samples.items():
        document = json.loads(ecs.encode(record))
        assert ecs_problems(document) == [], name
        assert document["auditlog"]["chain"] == record.chain()
        assert document["event"]["sequence"] == record.sequence


def test_the_check_finds_what_is_not_ecs() -> None:
    problems = ecs_problems(
        {
            "event": {"category": ["authentication"], "type": ["creation"], "outcome": "maybe"},
            "source": {"ip": "not-an-address", "geo": {"location": {"lat": 1}}},
            "user": {"nickname": "x"},
            "authentik": {"anything": {"goes": 1}},
        }
    )
    assert problems == [
        "event.outcome='maybe' is not one of ECS's values",
        "source.ip='not-an-address' is not a ip",
        "source.geo.location={'lat': 1} is not a geo_point",
        "user.nickname is not an ECS field",
        "event.type 'creation' is not expected with category 'authentication'",
    ]


def test_login_maps_as_elastics_integration_does(samples: dict[str, Any]) -> None:
    record = samples["login"]
    document = ecs_document(record)
    assert document["@timestamp"] == record.event["created"]
    assert document["event"]["created"] == record.event["created"]
    assert document["event"]["id"] == record.event["pk"]
    assert document["event"]["action"] == "login"
    assert document["event"]["kind"] == "event"
    assert (document["event"]["category"], document["event"]["type"]) == (
        ["authentication"],
        ["start"],
    )
    assert document["event"]["outcome"] == "success"
    assert document["user"] == {
        "id": "1" if record.event["user"]["pk"] == 1 else str(record.event["user"]["pk"]),
        "name": "admin",
        "email": record.event["user"]["email"],
        "domain": record.event["user"]["email"].split("@")[1],
    }
    assert document["related"]["user"] == [
        record.event["user"]["email"],
        str(record.event["user"]["pk"]),
        "admin",
    ]
    assert document["source"]["ip"] == PUBLIC_IP
    assert document["related"]["ip"] == [PUBLIC_IP]
    assert document["source"]["geo"]["city_name"] == "London"
    assert document["source"]["geo"]["country_iso_code"] == "GB"
    assert document["http"]["request"]["method"] == "POST"
    assert document["url"]["path"] == "/if/flow/default-authentication-flow/"
    assert document["user_agent"]["original"].startswith("Mozilla/5.0")
    # What moved to ECS fields is gone from authentik.event, as the pipeline removes it.
    rest = document["authentik"]["event"]
    assert "pk" not in rest and "client_ip" not in rest and "created" not in rest
    assert "user" not in rest
    assert set(rest["context"]["http_request"]) == {"args"}


def test_each_categorized_action_gets_the_pipelines_categorization(
    samples: dict[str, Any],
) -> None:
    checked = 0
    for record in samples.values():
        action = record.event["action"]
        event = ecs_document(record)["event"]
        expected = CATEGORIZATION.get(action)
        if expected is None:
            assert "category" not in event and "type" not in event and "outcome" not in event
            continue
        category, kinds, outcome = expected
        assert (event["category"], event["type"], event.get("outcome")) == (
            category,
            kinds,
            outcome,
        )
        checked += 1
    assert checked >= len(CATEGORIZATION)
    failed = ecs_document(samples["login_failed"])
    assert failed["event"]["action"] == "login-failed"
    assert failed["event"]["outcome"] == "failure"
    assert failed["source"]["ip"] == PUBLIC_IPV6
    assert "user" not in failed  # nobody was signed in; the attempt is in the context
    assert failed["authentik"]["event"]["context"]["username"] == "mallory"


def test_references_are_text_and_empty_values_are_dropped(samples: dict[str, Any]) -> None:
    document = ecs_document(samples["brand_updated"])
    model = document["authentik"]["event"]["context"]["model"]
    assert isinstance(model["pk"], str)
    group_change = ecs_document(samples["member_added"])
    assert "user" not in group_change and "source" not in group_change
    assert "user" not in group_change["authentik"]["event"]  # {} is dropped


def test_secrets_stay_masked(samples: dict[str, Any]) -> None:
    line = get_format("ecs").encode(samples["login_failed"])
    assert "hunter2" not in line and "\n" not in line
