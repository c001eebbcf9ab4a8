"""``/api/v3/events/events/``: list, filters, ordering, ingestion and the aggregate actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK, get_user
from directory.models import Brand, Group, User
from tests.conftest import grant

pytestmark = pytest.mark.django_db

EVENTS = "/api/v3/events/events/"
FIELDS = {"pk", "user", "action", "app", "context", "client_ip", "created", "expires", "brand"}


def make(
    action: str = EventAction.LOGIN,
    *,
    user: Any = None,
    client_ip: str | None = None,
    brand: dict | None = None,
    **context: Any,
) -> Event:
    event = Event(action=action, app="tests", context=context, client_ip=client_ip)
    if user is not None:
        event.user = get_user(user)
    if brand is not None:
        event.brand = brand
    event.save()
    return event


def pks(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["pk"] for row in response.json()["results"]]


def test_events_carry_exactly_the_serializer_fields(api_as, admin_user) -> None:
    event = make(user=admin_user, client_ip="81.2.69.142", message="hi")
    response = api_as(admin_user).get(f"{EVENTS}{event.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body["pk"] == str(event.pk)
    assert body["user"] == {"username": "admin", "pk": admin_user.pk, "email": "admin@example.com"}
    assert body["action"] == "login"
    assert body["context"] == {"message": "hi"}
    assert body["client_ip"] == "81.2.69.142"
    assert body["brand"]["model_name"] == "brand"


def test_the_list_is_newest_first(api_as, admin_user) -> None:
    old = make()
    Event.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=1))
    new = make()
    assert pks(api_as(admin_user).get(EVENTS, {"actions": "login"})) == [str(new.pk), str(old.pk)]


def test_an_unknown_event_is_a_404(api_as, admin_user) -> None:
    assert api_as(admin_user).get(f"{EVENTS}{uuid.uuid4()}/").status_code == 404
    assert api_as(admin_user).get(f"{EVENTS}not-a-uuid/").status_code == 404


def test_action_matches_parts_of_the_action(api_as, admin_user) -> None:
    created = make(EventAction.MODEL_CREATED)
    updated = make(EventAction.MODEL_UPDATED)
    make(EventAction.LOGIN)
    assert set(pks(api_as(admin_user).get(EVENTS, {"action": "model_"}))) >= {
        str(created.pk),
        str(updated.pk),
    }
    assert all(
        row["action"].startswith("model_")
        for row in api_as(admin_user).get(EVENTS, {"action": "model_"}).json()["results"]
    )


def test_actions_matches_exact_actions_and_refuses_unknown_ones(api_as, admin_user) -> None:
    login = make(EventAction.LOGIN)
    logout = make(EventAction.LOGOUT)
    make(EventAction.LOGIN_FAILED)
    client = api_as(admin_user)
    got = pks(client.get(f"{EVENTS}?actions=login&actions=logout"))
    assert set(got) == {str(login.pk), str(logout.pk)}
    bad = client.get(EVENTS, {"actions": "logon"})
    assert bad.status_code == 400
    assert "actions" in bad.json()


def test_username_matches_actor_named_user_and_changes_to_the_user(api_as, admin_user) -> None:
    ana = User.objects.create_user("ana")
    by = make(user=ana)
    about = make(EventAction.LOGIN_FAILED, username="ana")
    changed = Event.objects.filter(
        action=EventAction.MODEL_CREATED, context__model__pk=ana.pk
    ).get()
    make(user=admin_user)
    got = set(pks(api_as(admin_user).get(EVENTS, {"username": "ana", "page_size": 100})))
    assert {str(by.pk), str(about.pk), str(changed.pk)} <= got
    assert all(
        "ana" in str(row)
        for row in api_as(admin_user).get(EVENTS, {"username": "ana"}).json()["results"]
    )


def test_client_ip_is_exact_and_must_be_an_address(api_as, admin_user) -> None:
    hit = make(client_ip="10.0.0.1")
    make(client_ip="10.0.0.10")
    client = api_as(admin_user)
    assert pks(client.get(EVENTS, {"client_ip": "10.0.0.1"})) == [str(hit.pk)]
    bad = client.get(EVENTS, {"client_ip": "10.0.0"})
    assert bad.status_code == 400
    assert "client_ip" in bad.json()


def test_context_model_filters(api_as, admin_user) -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    client = api_as(admin_user)
    by_uuid = pks(client.get(EVENTS, {"context_model_pk": str(group.pk)}))  # dashes removed
    assert by_uuid and all(
        Event.objects.get(pk=pk).context["model"]["pk"] == group.pk.hex for pk in by_uuid
    )
    by_int = pks(
        client.get(EVENTS, {"context_model_pk": str(ana.pk), "context_model_name": "user"})
    )
    assert by_int and all(
        Event.objects.get(pk=pk).context["model"]["pk"] == ana.pk for pk in by_int
    )
    by_app = client.get(
        EVENTS, {"context_model_app": "directory", "context_model_name": "group"}
    ).json()
    assert by_app["results"] and all(
        row["context"]["model"]["model_name"] == "group" for row in by_app["results"]
    )


def test_context_authorized_app_and_brand_name(api_as, admin_user) -> None:
    application = uuid.uuid4()
    hit = make(
        EventAction.AUTHORIZE_APPLICATION,
        authorized_application={"pk": application.hex, "name": "My app"},
    )
    make(
        EventAction.AUTHORIZE_APPLICATION,
        authorized_application={"pk": uuid.uuid4().hex, "name": "Other"},
    )
    client = api_as(admin_user)
    assert pks(client.get(EVENTS, {"context_authorized_app": str(application)})) == [str(hit.pk)]
    branded = make(
        brand={"app": "directory", "model_name": "brand", "pk": "ab", "name": "my brand"}
    )
    assert pks(client.get(EVENTS, {"brand_name": "my brand"})) == [str(branded.pk)]


@pytest.mark.parametrize(
    "field",
    [
        "action",
        "-action",
        "created",
        "client_ip",
        "-client_ip",
        "app",
        "user",
        "pk",
        "brand_name",
        "username",
    ],
)
def test_every_ordering_is_accepted_and_stable(api_as, admin_user, field: str) -> None:
    for index in range(3):
        make(
            EventAction.LOGIN if index % 2 else EventAction.LOGOUT, client_ip=f"10.0.0.{index + 1}"
        )
    client = api_as(admin_user)
    response = client.get(EVENTS, {"ordering": field})
    assert response.status_code == 200
    assert pks(response) == pks(client.get(EVENTS, {"ordering": field}))


def test_ordering_sorts(api_as, admin_user) -> None:
    make(EventAction.LOGOUT)
    make(EventAction.LOGIN)
    make(EventAction.LOGIN_FAILED)
    actions = [
        row["action"]
        for row in api_as(admin_user)
        .get(EVENTS, {"ordering": "action", "page_size": 500})
        .json()["results"]
    ]
    assert actions == sorted(actions)
    reverse = [
        row["action"]
        for row in api_as(admin_user)
        .get(EVENTS, {"ordering": "-action", "page_size": 500})
        .json()["results"]
    ]
    assert reverse == sorted(reverse, reverse=True)


def test_an_unknown_ordering_is_a_400(api_as, admin_user) -> None:
    response = api_as(admin_user).get(EVENTS, {"ordering": "password"})
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_events_need_the_view_permission(api_as, nobody, auditor) -> None:
    make()
    refused = api_as(nobody).get(EVENTS)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "You do not have permission to perform this action."}
    assert api_as(auditor).get(EVENTS).status_code == 200


def test_ingesting_an_event_sets_pk_created_expires_and_masks_secrets(api_as, admin_user) -> None:
    payload = {
        "pk": str(uuid.uuid4()),
        "action": "login",
        "app": "vpn-gateway",
        "user": {"username": "ana", "pk": 7, "email": "ana@example.com"},
        "context": {"password": "hunter2", "nested": {"api_key": "k-123"}, "ok": True},
        "client_ip": "81.2.69.142",
        "created": "2001-01-01T00:00:00Z",
        "expires": "2001-01-02T00:00:00Z",
    }
    response = api_as(admin_user).post(EVENTS, payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["pk"] != payload["pk"]
    assert body["context"] == {"password": MASK, "nested": {"api_key": MASK}, "ok": True}
    event = Event.objects.get(pk=body["pk"])
    assert timezone.now() - event.created < timedelta(minutes=1)
    assert event.expires > timezone.now()
    assert event.user == payload["user"]
    assert "hunter2" not in str(Event.objects.values_list("context", flat=True))


def test_a_custom_action_can_be_ingested(api_as, admin_user) -> None:
    response = api_as(admin_user).post(
        EVENTS, {"action": "custom_vpn_connect", "app": "vpn"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["action"] == "custom_vpn_connect"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "teleport", "app": "x"}, "action"),
        ({"app": "x"}, "action"),
        ({"action": "login"}, "app"),
        ({"action": "login", "app": "x", "client_ip": "999.1.1.1"}, "client_ip"),
        ({"action": "login", "app": "x", "context": ["a"]}, "context"),
        ({"action": "login", "app": "x", "user": "ana"}, "user"),
        ({"action": "login", "app": "x", "brand": 3}, "brand"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(
    api_as, admin_user, payload: dict, field: str
) -> None:
    client = api_as(admin_user)
    before = Event.objects.count()
    response = client.post(EVENTS, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Event.objects.count() == before


def test_ingestion_needs_the_add_permission(api_as, auditor, nobody) -> None:
    payload = {"action": "login", "app": "x"}
    assert api_as(auditor).post(EVENTS, payload, format="json").status_code == 403
    assert api_as(nobody).post(EVENTS, payload, format="json").status_code == 403
    writer = grant(nobody, "auditlog.add_event")
    assert api_as(writer).post(EVENTS, payload, format="json").status_code == 201


def test_events_are_append_only(api_as, admin_user) -> None:
    event = make()
    client = api_as(admin_user)
    url = f"{EVENTS}{event.pk}/"
    assert client.put(url, {"action": "logout", "app": "x"}, format="json").status_code == 405
    assert client.patch(url, {"action": "logout"}, format="json").status_code == 405
    assert client.delete(url).status_code == 405
    event.refresh_from_db()
    assert event.action == "login"


def test_actions_lists_every_action(api_as, admin_user) -> None:
    body = api_as(admin_user).get(f"{EVENTS}actions/").json()
    assert {
        "name": "Login Failed",
        "description": "",
        "component": "login_failed",
        "model_name": "",
    } in body
    assert {row["component"] for row in body} == set(EventAction.values)


def test_top_per_user_follows_authentiks_test(api_as, admin_user) -> None:
    make(EventAction.AUTHORIZE_APPLICATION, authorized_application={"name": "foo"})
    body = (
        api_as(admin_user).get(f"{EVENTS}top_per_user/", {"action": "authorize_application"}).json()
    )
    assert body == [{"application": {"name": "foo"}, "counted_events": 1, "unique_users": 0}]


def test_top_per_user_counts_events_and_distinct_users(api_as, admin_user) -> None:
    ana, ben = User.objects.create_user("ana"), User.objects.create_user("ben")
    big = {"pk": "a1", "name": "Big"}
    for user in (ana, ana, ben):
        make(EventAction.AUTHORIZE_APPLICATION, user=user, authorized_application=big)
    make(
        EventAction.AUTHORIZE_APPLICATION,
        user=ana,
        authorized_application={"pk": "b2", "name": "Small"},
    )
    body = (
        api_as(admin_user)
        .get(f"{EVENTS}top_per_user/", {"action": "authorize_application", "top_n": 1})
        .json()
    )
    assert body == [{"application": big, "counted_events": 3, "unique_users": 2}]


def test_volume_counts_per_action_in_six_hour_buckets(api_as, admin_user) -> None:
    base = (
        (timezone.now() - timedelta(days=1))
        .astimezone(UTC)
        .replace(hour=7, minute=30, second=0, microsecond=0)
    )
    for offset, action in [
        (0, "login"),
        (timedelta(hours=4), "login"),
        (timedelta(hours=5), "logout"),
    ]:
        event = make(action)
        Event.objects.filter(pk=event.pk).update(created=base + (offset or timedelta()))
    old = make("login")
    Event.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=10))
    body = (
        api_as(admin_user)
        .get(f"{EVENTS}volume/?history_days=7&actions=login&actions=logout")
        .json()
    )
    bucket_06 = base.replace(hour=6, minute=0).isoformat().replace("+00:00", "Z")
    bucket_12 = base.replace(hour=12, minute=0).isoformat().replace("+00:00", "Z")
    # 07:30 and 11:30 fall in the 06:00 bucket, 12:30 in the 12:00 one; 10 days ago is outside.
    assert body == [
        {"action": "login", "time": bucket_06, "count": 2},
        {"action": "logout", "time": bucket_12, "count": 1},
    ]


def test_volume_honours_filters_and_search(api_as, admin_user) -> None:
    make("login")
    make("logout")
    body = api_as(admin_user).get(f"{EVENTS}volume/", {"search": 'action = "logout"'}).json()
    assert [row["action"] for row in body] == ["logout"]
    assert api_as(admin_user).get(f"{EVENTS}volume/", {"history_days": "x"}).status_code == 400


def test_stats_follows_authentiks_test(api_as, admin_user) -> None:
    ana = User.objects.create_user("ana")
    make(user=ana)
    make(user=ana)
    response = api_as(admin_user).get(
        f"{EVENTS}stats/?count_steps=hours=24&count_steps=days=7&count_steps=days=240&actions=login"
    )
    assert response.json() == {
        "unique_users": 1,
        "count_step": {"hours24": 2, "days7": 2, "days240": 2},
    }


def test_stats_refuses_bad_steps(api_as, admin_user) -> None:
    client = api_as(admin_user)
    bad = client.get(f"{EVENTS}stats/", {"count_steps": "24d"})
    assert bad.status_code == 400
    assert bad.json() == {
        "count_steps": {"0": ["24d is not in the correct format of 'hours=3;minutes=1'."]}
    }
    assert client.get(f"{EVENTS}stats/").status_code == 400


def test_the_aggregate_actions_need_the_view_permission(api_as, nobody) -> None:
    client = api_as(nobody)
    for path in ("actions/", "top_per_user/", "volume/", "stats/?count_steps=hours=1"):
        assert client.get(f"{EVENTS}{path}").status_code == 403, path


def test_the_event_json_is_stable_between_reads(api_as, admin_user) -> None:
    make(user=admin_user, client_ip="81.2.69.142", a={"b": [1, 2]})
    client = api_as(admin_user)
    assert client.get(EVENTS).content == client.get(EVENTS).content


def test_a_brand_on_the_request_is_recorded_on_ingested_events(api_as, admin_user) -> None:
    Brand.objects.create(domain="testserver", name="Test server brand")
    from directory.brands import forget_brands

    forget_brands()
    body = api_as(admin_user).post(EVENTS, {"action": "login", "app": "x"}, format="json").json()
    assert body["brand"]["name"] == "Test server brand"


def test_created_dates_are_utc(api_as, admin_user) -> None:
    event = make()
    created = api_as(admin_user).get(f"{EVENTS}{event.pk}/").json()["created"]
    assert datetime.fromisoformat(created.replace("Z", "+00:00")) == event.created


def test_action_matches_custom_actions_by_substring_too(api_as, admin_user) -> None:
    custom = make("custom_login_sso")
    login = make(EventAction.LOGIN)
    make(EventAction.LOGOUT)
    got = set(pks(api_as(admin_user).get(EVENTS, {"action": "login", "page_size": 500})))
    assert {str(custom.pk), str(login.pk)} <= got
    assert all("login" in Event.objects.get(pk=pk).action for pk in got)
    assert pks(api_as(admin_user).get(EVENTS, {"action": "_sso"})) == [str(custom.pk)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_the_fast_event_json_equals_drfs_rendering(settings, zone: str) -> None:
    from rest_framework import serializers as drf

    from auditlog.api.serializers import EventSerializer

    settings.TIME_ZONE = zone
    generic = drf.ModelSerializer.to_representation
    events = [
        make(client_ip="81.2.69.142", nested={"a": [1, {"b": None}]}),
        make(EventAction.LOGOUT),
        Event.objects.create(action="custom_x", app="t", user={}, context={}, brand={}),
    ]
    for event in Event.objects.filter(pk__in=[e.pk for e in events]):
        serializer = EventSerializer(event)
        assert serializer.to_representation(event) == generic(serializer, event)
