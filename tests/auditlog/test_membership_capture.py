"""Membership changes (many-to-many add, remove, clear) on both capture paths: the through
tables' triggers on PostgreSQL write the events the m2m_changed receiver writes elsewhere,
and also see memberships changed by raw SQL and by other sessions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
from django.db.models.signals import pre_delete
from django.test import RequestFactory

from auditlog import triggers
from auditlog.capture import audit_ignore, request_context
from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from directory.models import Group, User
from notifications.models import NotificationRule, NotificationTransport
from searches.models import SavedSearch

pytestmark = pytest.mark.django_db
both_paths = pytest.mark.usefixtures("capture_path")
triggers_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="database-side capture is PostgreSQL's"
)


@pytest.fixture
def triggers_on(settings: Any) -> None:
    settings.AUDIT_DB_CAPTURE = True


def diffs(instance: Any) -> list[dict[str, Any]]:
    """The membership diffs recorded for ``instance``, oldest first."""
    events = Event.objects.for_model(instance).filter(action=EventAction.MODEL_UPDATED)
    return [event.context["diff"] for event in events.order_by("created")]


def _request(actor: User) -> Any:
    request = RequestFactory().post("/api/v3/core/groups/x/add_user/", REMOTE_ADDR="81.2.69.142")
    request.user = actor
    request.request_id = "req-m2m"  # as the middleware sets it
    return request


# --- The same events on both paths ---------------------------------------------------------------


def _scenario(actor: User) -> None:
    """Every audited many-to-many relation, changed from either side, in a request (the
    objects' pks are fixed: the runs are compared)."""
    with request_context(_request(actor)):
        group = Group.objects.create(group_uuid=uuid.UUID(int=1), num_pk=4242, name="Engineering")
        ana = User.objects.create_user("ana", email="ana@example.com", pk=9001)
        ben = User.objects.create_user("ben", pk=9002)
        group.users.add(ben, ana)
        ana.groups.remove(group)
        ana.groups.add(group)
        perms = list(Permission.objects.order_by("pk")[:3])
        group.permissions.add(*perms)
        ana.user_permissions.add(perms[2], perms[0])
        group.permissions.remove(perms[1])
        search = SavedSearch.objects.create(pk=901, name="failures", owner=ana)
        search.pinned_by.add(ana, ben)
        ben.pinned_searches.remove(search)
        transport = NotificationTransport.objects.create(uuid=uuid.UUID(int=2), name="drawer")
        rule = NotificationRule.objects.create(
            uuid=uuid.UUID(int=3), name="logins", match='action = "login"'
        )
        rule.transports.add(transport)
        transport.rules.clear()
        group.users.clear()
        ana.user_permissions.clear()
        ben.user_permissions.add(perms[1])
        ben.delete()  # its remaining rows go with it: no membership change


def _recorded(settings: Any, path: str) -> list[dict[str, Any]]:
    settings.AUDIT_DB_CAPTURE = path == "triggers"
    actor = User.objects.get(username="root")
    with transaction.atomic():
        before = set(Event.objects.values_list("pk", flat=True))
        _scenario(actor)
        events = Event.objects.filter(action=EventAction.MODEL_UPDATED).exclude(pk__in=before)
        events = events.order_by("created")
        rows = [
            {
                "created": event.created,
                "lifetime": event.expires - event.created,
                "event": {
                    "action": event.action,
                    "app": event.app,
                    "user": event.user,
                    "client_ip": event.client_ip,
                    "brand": event.brand,
                    "context": event.context,
                    "expiring": event.expiring,
                },
            }
            for event in events
            if "diff" in event.context and "previous_value" not in json.dumps(event.context)
        ]
        transaction.set_rollback(True)
    return rows


def _canonical(row: dict[str, Any]) -> str:
    return json.dumps(row["event"], sort_keys=True)


@triggers_only
def test_membership_events_are_the_same_field_for_field_on_both_paths(settings: Any) -> None:
    User.objects.create_user("root", email="root@example.com")
    by_triggers = _recorded(settings, "triggers")
    by_signals = _recorded(settings, "signals")
    expected = [_canonical(row) for row in by_signals]
    assert len(expected) == 24
    assert sorted(map(_canonical, by_triggers)) == sorted(expected)
    # In the same order: the changed object's event first, then the related objects' in
    # their model's order (events of one statement may share a microsecond).
    in_order = sorted(
        by_triggers, key=lambda row: (row["created"], expected.index(_canonical(row)))
    )
    assert [_canonical(row) for row in in_order] == expected
    lifetimes = {round(row["lifetime"].total_seconds()) for row in by_triggers + by_signals}
    assert lifetimes == {365 * 86400}  # the retention, from the moment each was written
    first = by_triggers[0]["event"]
    assert first["user"]["username"] == "root" and first["client_ip"] == "81.2.69.142"
    assert first["context"]["http_request"]["request_id"] == "req-m2m"


# --- What both paths record --------------------------------------------------------------------


@both_paths
def test_clear_is_recorded_as_a_clear_from_either_side() -> None:
    group = Group.objects.create(name="Engineering")
    ops = Group.objects.create(name="Ops")
    ana = User.objects.create_user("ana")
    ana.groups.add(group, ops)
    ana.groups.clear()
    assert diffs(ana)[-1] == {
        "groups": {"clear": True, "names": {group.pk.hex: "Engineering", ops.pk.hex: "Ops"}}
    }
    for each in (group, ops):
        assert diffs(each)[-1] == {"users": {"remove": [ana.pk], "names": {str(ana.pk): "ana"}}}


@both_paths
def test_permission_names_read_as_django_names_them_even_for_a_stale_content_type() -> None:
    gone = ContentType.objects.create(app_label="retired", model="widget")
    stale = Permission.objects.create(content_type=gone, codename="spin", name="Can spin widget")
    view_event = Permission.objects.get(content_type__app_label="auditlog", codename="view_event")
    group = Group.objects.create(name="Auditors")
    group.permissions.add(stale, view_event)
    names = {
        str(stale.pk): "widget | Can spin widget",
        str(view_event.pk): "Events | Event | Can view Event",
    }
    assert names == {str(perm.pk): str(perm) for perm in (stale, view_event)}
    assert diffs(group)[-1] == {
        "permissions": {"add": sorted([stale.pk, view_event.pk]), "names": names}
    }
    ana = User.objects.create_user("ana")
    ana.user_permissions.add(view_event)
    assert diffs(ana)[-1] == {
        "user_permissions": {"add": [view_event.pk], "names": {str(view_event.pk): str(view_event)}}
    }


@both_paths
def test_a_rolled_back_membership_change_leaves_no_event() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    with pytest.raises(RuntimeError), transaction.atomic():
        group.users.add(ana)
        assert len(diffs(group)) == 1  # written with the change...
        raise RuntimeError("roll back")
    assert diffs(group) == [] and diffs(ana) == []  # ...and gone with it


@both_paths
def test_audit_ignore_silences_membership_changes() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    with audit_ignore():
        group.users.add(ana)
        group.users.clear()
    assert diffs(group) == [] and diffs(ana) == []


@both_paths
def test_deleting_a_member_is_no_membership_change_but_a_later_removal_is() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    bob = User.objects.create_user("bob")
    group.users.add(ana, bob)
    ana.delete()
    assert len(diffs(group)) == 1  # the add; the row that went with ana is no "remove"
    group.users.remove(bob)
    assert diffs(group)[-1] == {"users": {"remove": [bob.pk], "names": {str(bob.pk): "bob"}}}


@both_paths
def test_a_deletion_that_fails_leaves_no_hint_behind() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    group.users.add(ana)

    def refuse(**_: Any) -> None:
        raise RuntimeError("not now")

    pre_delete.connect(refuse, sender=User, dispatch_uid="test.refuse")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            ana.delete()  # the capture's receiver has named ana before this one refused
    finally:
        pre_delete.disconnect(refuse, sender=User, dispatch_uid="test.refuse")
    group.users.remove(ana)  # in the same transaction: a membership change all the same
    assert diffs(group)[-1] == {"users": {"remove": [ana.pk], "names": {str(ana.pk): "ana"}}}


# --- What only the triggers see -----------------------------------------------------------------


@triggers_only
@pytest.mark.usefixtures("triggers_on")
def test_a_membership_changed_by_raw_sql_is_recorded_with_the_request() -> None:
    actor = User.objects.create_user("root")
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    ben = User.objects.create_user("ben")
    with request_context(_request(actor)), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO directory_group_users (group_id, user_id) VALUES (%s, %s), (%s, %s)",
            [group.pk, ben.pk, group.pk, ana.pk],
        )
        assert cursor.rowcount == 2
        cursor.execute("DELETE FROM directory_group_users WHERE group_id = %s", [group.pk])
        assert cursor.rowcount == 2
    names = {str(ana.pk): "ana", str(ben.pk): "ben"}
    assert diffs(group) == [
        {"users": {"add": sorted([ana.pk, ben.pk]), "names": names}},
        {"users": {"remove": sorted([ana.pk, ben.pk]), "names": names}},  # not a clear()
    ]
    group_names = {group.pk.hex: "Engineering"}
    for user in (ana, ben):
        assert diffs(user) == [
            {"groups": {"add": [group.pk.hex], "names": group_names}},
            {"groups": {"remove": [group.pk.hex], "names": group_names}},
        ]
    event = Event.objects.for_model(group).filter(action=EventAction.MODEL_UPDATED).first()
    assert event is not None
    assert event.user["username"] == "root" and event.client_ip == "81.2.69.142"
    assert event.context["http_request"]["request_id"] == "req-m2m"


def _another_session(sql: str, params: list[Any], *, commit: bool = True) -> None:
    """Run ``sql`` in a session of its own, past the application (as psql or a script)."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings.get("HOST") or "127.0.0.1",
        port=int(settings.get("PORT") or 5432),
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        dbname=settings["NAME"],
    ) as session:
        session.execute(sql, params)
        if not commit:
            session.rollback()


@triggers_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("triggers_on")
def test_a_membership_changed_by_another_session_names_the_database_user() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    insert = "INSERT INTO directory_group_users (group_id, user_id) VALUES (%s, %s)"
    _another_session(insert, [group.pk, ana.pk], commit=False)
    assert diffs(group) == [] and diffs(ana) == []  # rolled back: nothing happened
    _another_session(insert, [group.pk, ana.pk])
    assert diffs(group) == [{"users": {"add": [ana.pk], "names": {str(ana.pk): "ana"}}}]
    assert diffs(ana) == [
        {"groups": {"add": [group.pk.hex], "names": {group.pk.hex: "Engineering"}}}
    ]
    database_user = connection.settings_dict.get("USER") or "postgres"
    for event in Event.objects.filter(action=EventAction.MODEL_UPDATED):
        assert event.user == {"username": database_user, "pk": None, "email": ""}
        assert event.context["source"] == "database"
        assert event.context["database_user"] == database_user
        assert event.client_ip is None


# --- How the triggers are generated -----------------------------------------------------------


def test_every_model_at_an_end_of_an_audited_relation_is_named_as_python_names_it() -> None:
    ends = {end.model for pair in triggers._memberships.values() for end in pair}
    assert {User, Group, Permission, SavedSearch, NotificationRule, NotificationTransport} <= ends
    unnamed = [
        model._meta.label
        for model in ends
        if model.__str__ is not models.Model.__str__
        and model._meta.label_lower not in triggers.STR_SQL
        and model is not Permission
    ]
    assert unnamed == [], "add their __str__ to triggers.STR_SQL"


def test_a_relation_the_policy_calls_secret_is_masked_in_the_triggers(monkeypatch: Any) -> None:
    [source, target] = triggers._memberships[Group.users.through]
    [insert, _] = triggers.membership_triggers(Group.users.through, (source, target))
    assert MASK not in insert.func
    monkeypatch.setattr(triggers, "sanitize", lambda value: {"diff": {}})  # a stricter policy
    [masked, _] = triggers.membership_triggers(Group.users.through, (source, target))
    assert f"to_jsonb('{MASK}'::text)" in masked.func
