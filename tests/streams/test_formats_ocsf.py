"""OCSF: every action's output validates against OCSF 1.5.0 through the ocsf-emitter package's
models (generated from the OCSF schema) and its invariant checks, with no attribute the
schema does not define outside ``unmapped``."""

from __future__ import annotations

import json
from typing import Any

import ocsf_emitter
import pytest
from pydantic import BaseModel

from directory.models import User
from streams.formats import get_format
from streams.formats.ocsf import ocsf_event
from tests.streams.format_samples import PUBLIC_IP, sample_records

pytestmark = pytest.mark.django_db

MODELS: dict[int, type[BaseModel]] = {
    3001: ocsf_emitter.models.AccountChange,
    3002: ocsf_emitter.models.Authentication,
    3006: ocsf_emitter.models.GroupManagement,
    6003: ocsf_emitter.models.ApiActivity,
}
ACTIVITIES = {
    3001: ocsf_emitter.AccountChangeAction,
    3002: ocsf_emitter.AuthenticationAction,
    3006: ocsf_emitter.GroupManagementAction,
    6003: ocsf_emitter.ApiActivityAction,
}


def _undeclared(model: BaseModel, path: str = "") -> list[str]:
    """Attributes the OCSF models accept (they allow extras) but the schema does not define."""
    found = [f"{path}{key}" for key in (model.model_extra or {})]
    for name in type(model).model_fields:
        if name == "unmapped":
            continue
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                found += _undeclared(item, f"{path}{name}.")
    return found


def validated(document: dict[str, Any]) -> BaseModel:
    model = MODELS[document["class_uid"]].model_validate(document)
    # The package's own validation: pydantic again, then class/category/type_uid/version.
    ocsf_emitter.validate(model)  # type: ignore[arg-type]
    assert _undeclared(model) == []
    return model


@pytest.fixture
def samples(admin_user: User, geoip_dbs: Any) -> dict[str, Any]:
    return sample_records(admin_user)


def test_every_action_validates_against_ocsf(samples: dict[str, Any]) -> None:
    ocsf = get_format("ocsf")
    for name, record in samples.items():
        document = json.loads(ocsf.encode(record))
        validated(document)
        activity = ACTIVITIES[document["class_uid"]](document["activity_id"])
        assert document["activity_name"].upper().replace(" ", "_") == activity.name, name
        assert document["metadata"]["uid"] == record.event["pk"]
        assert document["metadata"]["sequence"] == record.sequence
        assert document["metadata"]["event_code"] == record.event["action"]
        assert document["unmapped"]["chain"] == {
            "sequence": record.sequence,
            "hash": record.chain_hash,
            "prev_hash": record.prev_hash,
            "previous_sequence": record.previous_sequence,
        }


def test_each_action_lands_in_its_ocsf_class(samples: dict[str, Any]) -> None:
    def shape(name: str) -> tuple[int, int]:
        document = ocsf_event(samples[name])
        return document["class_uid"], document["activity_id"]

    assert shape("login") == (3002, 1)
    assert shape("logout") == (3002, 2)
    assert shape("login_failed") == (3002, 1)
    assert shape("password_set") == (3001, 3)
    assert shape("password_set_by_capture") == (3001, 3)
    assert shape("user_write") == (3001, 99)
    assert shape("user_write_created") == (3001, 1)
    assert shape("user_created") == (3001, 1)
    assert shape("user_disabled") == (3001, 5)
    assert shape("user_deleted") == (3001, 6)
    assert shape("group_created") == (3006, 6)
    assert shape("member_added") == (3006, 3)
    assert shape("member_removed") == (3006, 4)
    assert shape("member_added_from_user") == (3006, 3)
    assert shape("members_added") == (3006, 3)
    assert shape("members_cleared") == (3006, 4)
    assert shape("group_deleted") == (3006, 5)
    assert shape("brand_created") == (6003, 1)
    assert shape("brand_updated") == (6003, 3)
    assert shape("email_sent") == (6003, 99)
    assert shape("custom_deploy") == (6003, 99)


def test_authentication_carries_the_subject_outcome_and_origin(samples: dict[str, Any]) -> None:
    login = ocsf_event(samples["login"])
    assert login["user"]["name"] == "admin" and login["status_id"] == 1
    assert login["src_endpoint"]["ip"] == PUBLIC_IP
    assert login["src_endpoint"]["location"]["city"] == "London"
    assert login["src_endpoint"]["location"]["country"] == "GB"
    assert login["http_request"]["http_method"] == "POST"
    assert login["http_request"]["url"]["path"] == "/if/flow/default-authentication-flow/"
    assert login["http_request"]["user_agent"].startswith("Mozilla/5.0")
    failed = ocsf_event(samples["login_failed"])
    assert failed["user"] == {"name": "mallory"}
    assert failed["status_id"] == 2 and failed["status"] == "Failure"
    assert failed["severity_id"] > login["severity_id"]
    assert failed["status_detail"] == samples["login_failed"].event["context"]["message"]


def test_group_membership_names_the_group_and_the_member(samples: dict[str, Any]) -> None:
    added = ocsf_event(samples["member_added"])
    member = samples["member_added"].event["context"]["diff"]["users"]["add"][0]
    assert added["group"]["name"] == "admins"
    assert added["user"] == {"uid": str(member)}
    # Several members at once, or all of them: the group, and the members in the context.
    for name in ("members_added", "members_cleared"):
        document = ocsf_event(samples[name])
        assert document["group"] == added["group"] and "user" not in document
    from_user = ocsf_event(samples["member_added_from_user"])
    assert from_user["group"]["uid"] == added["group"]["uid"]
    assert from_user["user"]["name"] == "alice"


def test_api_activity_names_the_model_and_who_acted(samples: dict[str, Any]) -> None:
    updated = ocsf_event(samples["brand_updated"])
    assert updated["api"] == {"operation": "model_updated"}
    assert updated["resources"][0]["type"] == "brand"
    assert updated["resources"][0]["namespace"] == "directory"
    assert updated["actor"]["app_name"] == samples["brand_updated"].event["app"]


def test_the_redacted_event_is_all_that_goes_out(samples: dict[str, Any]) -> None:
    line = get_format("ocsf").encode(samples["login_failed"])
    assert "hunter2" not in line
    assert json.loads(line)["unmapped"]["authentik"]["context"]["password"] == "*" * 20
    assert "\n" not in line
