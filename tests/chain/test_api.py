"""``/api/v3/events/chain/verify/`` and ``/api/v3/events/chain/checkpoints/``."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from auditlog import chain
from auditlog.api import chain as chain_api
from auditlog.models import ChainCheckpoint, Event, EventChainPending
from tests.chain.conftest import at, db_pk, raw, write

pytestmark = pytest.mark.django_db

VERIFY = "/api/v3/events/chain/verify/"
CHECKPOINTS = "/api/v3/events/chain/checkpoints/"


def sealed(count: int) -> None:
    # Only our events: the personas' and tokens' creation events are not part of these tests.
    queued = EventChainPending.objects.all()
    Event.objects.filter(pk__in=queued.values("event_uuid")).delete()
    queued.delete()
    for _ in range(count // 5):
        write(5)
        chain.seal_pending()


def test_verify_answers_from_the_latest_checkpoint_by_default(api_as: Any, auditor: Any) -> None:
    client = api_as(auditor)
    sealed(10)
    write(3)
    chain.seal_pending()  # 13: no checkpoint due
    response = client.get(VERIFY)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "verified": 4,
        "unsealed": 0,
        "unchained": 0,
        "head": 13,
        "from_sequence": 10,
        "to_sequence": 13,
        "checkpoints": 1,
        "pruned": 0,
        "first_broken": None,
    }


def test_verify_a_range_and_name_the_first_broken_link(api_as: Any, admin_user: Any) -> None:
    client = api_as(admin_user)
    sealed(10)
    target = at(4)
    raw("UPDATE auditlog_event SET context = %s WHERE event_uuid = %s", ['{"a": 1}', db_pk(target)])
    assert client.get(VERIFY).json()["ok"] is True  # the default range starts at 10

    body = client.get(VERIFY, {"from_sequence": 1, "to_sequence": 10}).json()
    assert body["ok"] is False
    assert body["verified"] == 3
    assert body["first_broken"] == {
        "sequence": 4,
        "event_pk": str(target.event_uuid),
        "reason": "content_changed",
        "message": f"Event chain broken at sequence 4 (event {target.event_uuid}): content "
        "changed: the event no longer matches the hash it was sealed with.",
    }


def test_verify_names_an_event_that_is_not_chained(api_as: Any, auditor: Any) -> None:
    client = api_as(auditor)
    sealed(5)
    (bypassed,) = write(1)
    EventChainPending.objects.filter(pk=bypassed.pk).delete()  # taken out of the queue
    body = client.get(VERIFY).json()
    assert body["ok"] is False
    assert (body["verified"], body["unsealed"], body["unchained"]) == (1, 0, 1)
    assert body["first_broken"] == {
        "sequence": None,
        "event_pk": str(bypassed.pk),
        "reason": "not_chained",
        "message": f"Event chain broken at event {bypassed.pk}: events not chained: it is "
        "neither chained nor waiting to be sealed (inserted with the queue trigger disabled, or "
        "taken out of the queue).",
    }


def test_verify_an_empty_chain(api_as: Any, auditor: Any) -> None:
    client = api_as(auditor)
    Event.objects.all().delete()
    body = client.get(VERIFY).json()
    assert body["ok"] is True
    assert (body["verified"], body["head"], body["first_broken"]) == (0, None, None)


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"from_sequence": "abc"}, {"from_sequence": ["'abc' is not a whole number."]}),
        ({"from_sequence": "0"}, {"from_sequence": ["Must be at least 1."]}),
        (
            {"from_sequence": "5", "to_sequence": "2"},
            {"to_sequence": ["Must not be below from_sequence (5)."]},
        ),
    ],
)
def test_verify_refuses_bad_ranges(
    api_as: Any, auditor: Any, params: dict[str, str], errors: Any
) -> None:
    response = api_as(auditor).get(VERIFY, params)
    assert response.status_code == 400
    assert response.json() == errors


def test_verify_refuses_a_range_too_big_for_one_request(
    api_as: Any, auditor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_api, "VERIFY_LIMIT", 5)
    client = api_as(auditor)
    sealed(10)
    response = client.get(VERIFY, {"from_sequence": 1, "to_sequence": 6})
    assert response.status_code == 400
    assert response.json() == {
        "to_sequence": [
            "Verify at most 5 sequences per request; use manage.py verify_events for the whole "
            "chain."
        ]
    }
    # Without an explicit end the range is cut at the limit.
    body = client.get(VERIFY, {"from_sequence": 2}).json()
    assert (body["from_sequence"], body["to_sequence"], body["verified"]) == (2, 6, 5)


def test_checkpoints_are_listed_with_authentik_pagination(api_as: Any, auditor: Any) -> None:
    client = api_as(auditor)
    sealed(15)
    response = client.get(CHECKPOINTS, {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {
        "next": 2,
        "previous": 0,
        "count": 3,
        "current": 1,
        "total_pages": 2,
        "start_index": 1,
        "end_index": 2,
    }
    assert body["autocomplete"] == {}
    first = ChainCheckpoint.objects.order_by("sequence").first()
    assert body["results"][0] == chain.checkpoint_record(first)
    assert chain.signature_valid(body["results"][0])

    later = client.get(CHECKPOINTS, {"since": 5, "kind": "checkpoint"}).json()
    assert [item["sequence"] for item in later["results"]] == [10, 15]
    assert client.get(CHECKPOINTS, {"kind": "prune"}).json()["results"] == []


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"since": "x"}, {"since": ["'x' is not a whole number."]}),
        ({"kind": "other"}, {"kind": ["'other' is not one of checkpoint, prune."]}),
    ],
)
def test_checkpoints_refuse_bad_filters(
    api_as: Any, auditor: Any, params: dict[str, str], errors: Any
) -> None:
    response = api_as(auditor).get(CHECKPOINTS, params)
    assert response.status_code == 400
    assert response.json() == errors


@pytest.mark.parametrize("path", [VERIFY, CHECKPOINTS])
def test_anonymous_users_and_users_without_rights_are_refused(
    api_as: Any, nobody: Any, path: str
) -> None:
    sealed(5)
    assert APIClient().get(path).status_code == 403
    assert api_as(nobody).get(path).status_code == 403


@pytest.mark.parametrize("path", [VERIFY, CHECKPOINTS])
def test_the_endpoints_are_read_only(api_as: Any, admin_user: Any, path: str) -> None:
    assert api_as(admin_user).post(path, {}, format="json").status_code == 405


def test_the_schema_describes_the_chain_endpoints(api_as: Any, admin_user: Any) -> None:
    from django.test import Client

    client = Client()
    client.force_login(admin_user)
    schema = client.get("/api/v3/schema/", {"format": "json"}).json()
    assert {VERIFY, CHECKPOINTS} <= set(schema["paths"])
    parameters = {p["name"] for p in schema["paths"][VERIFY]["get"]["parameters"]}
    assert {"from_sequence", "to_sequence"} <= parameters
