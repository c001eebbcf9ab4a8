"""Events of every kind, written the way the product writes them (the recording service, real
model changes, a real request with GeoIP), sealed, and read back as stream records."""

from __future__ import annotations

from typing import Any

from django.test import RequestFactory

from auditlog import chain
from auditlog.models import Event, EventAction
from auditlog.positions import events_after, head_position
from auditlog.services import record_event
from directory.models import Brand, Group, User
from streams.formats import StreamRecord

PUBLIC_IP = "81.2.69.142"  # London in MaxMind's test database
PUBLIC_IPV6 = "2001:480::1"
TRICKY = "a|b\\c=d\ne\r\nf"


def _request(path: str = "/if/flow/default-authentication-flow/", ip: str = PUBLIC_IP) -> Any:
    return RequestFactory().post(
        path + "?next=%2F",
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    )


def write_samples(admin: User) -> dict[str, Event]:
    """One event of every action (custom included) and of every model-change shape the OCSF
    mapping tells apart, keyed by a name."""
    events: dict[str, Event] = {}
    request = _request()
    request.user = admin
    events["login"] = record_event(action="login", app="tests", request=request)
    events["logout"] = record_event(action="logout", app="tests", request=request)
    anonymous = _request(ip=PUBLIC_IPV6)
    events["login_failed"] = record_event(
        action="login_failed",
        app="tests",
        request=anonymous,
        context={"username": "mallory", "password": "hunter2", "message": TRICKY},
    )
    for action in EventAction.values:
        if action in ("login", "logout", "login_failed") or action.startswith("model_"):
            continue
        name = "custom_deploy" if action == "custom_" else action
        events[name] = record_event(
            action=name,
            app="tests",
            user=admin,
            client_ip="10.0.0.1",
            context={"message": f"{name} happened", "result": {"passing": True}},
        )
    events["user_write_created"] = record_event(
        action="user_write", app="tests", user=admin, context={"created": True}
    )
    alice = User.objects.create_user(username="alice", email="alice@example.com")
    events["user_created"] = Event.objects.filter(action="model_created").latest("created")
    alice.is_active = False
    alice.save()
    events["user_disabled"] = Event.objects.filter(action="model_updated").latest("created")
    alice.set_password("correct horse battery staple")
    alice.save()
    events["password_set_by_capture"] = Event.objects.filter(action="password_set").latest(
        "created"
    )
    group = Group.objects.create(name="admins")
    events["group_created"] = Event.objects.filter(action="model_created").latest("created")
    group.users.add(alice)
    events["member_added"] = _change_of("group")
    group.users.remove(alice)
    events["member_removed"] = _change_of("group")
    group.users.add(alice, User.objects.create_user(username="bob"))
    events["members_added"] = _change_of("group")
    group.users.clear()
    events["members_cleared"] = _change_of("group")
    alice.groups.add(group)
    events["member_added_from_user"] = _change_of("user")
    brand = Brand.objects.create(domain="example.com", name="Example")
    events["brand_created"] = Event.objects.filter(action="model_created").latest("created")
    brand.domain = "example.org"
    brand.save()
    events["brand_updated"] = Event.objects.filter(action="model_updated").latest("created")
    group.delete()
    events["group_deleted"] = Event.objects.filter(action="model_deleted").latest("created")
    alice.delete()
    events["user_deleted"] = Event.objects.filter(action="model_deleted").latest("created")
    return events


def _change_of(model_name: str) -> Event:
    """The newest change of a ``model_name`` object: a membership change is recorded on both
    sides (the group's event and the user's), so "the newest change" alone is ambiguous."""
    return Event.objects.filter(
        action="model_updated", context__model__model_name=model_name
    ).latest("created")


def records(events: dict[str, Event], start: int) -> dict[str, StreamRecord]:
    """The stream record of each event (sealed first), with each record's predecessor."""
    chain.seal_pending()
    wanted = {event.event_uuid: name for name, event in events.items()}
    page = events_after(Event.objects.filter(event_uuid__in=wanted), start, len(wanted) + 1)
    out: dict[str, StreamRecord] = {}
    previous: int | None = None
    for item in page.items:
        out[wanted[item.event.event_uuid]] = StreamRecord.of(item, previous)
        previous = item.sequence
    assert set(out) == set(events), "every sample is sealed"
    return out


def sample_records(admin: User) -> dict[str, StreamRecord]:
    start = head_position()
    return records(write_samples(admin), start)
