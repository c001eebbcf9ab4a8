"""Model-change capture: events with diffs, in the same transaction as the change."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test import RequestFactory

from auditlog.capture import acting_user, audit_ignore, build_diff, request_context
from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from auditlog.services import record_event
from directory.models import Brand, Group, Token, TokenIntent, User
from notifications.models import Notification

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("capture_path")]


def events_for(instance: Any, action: str | None = None) -> list[Event]:
    queryset = Event.objects.for_model(instance).order_by("created")
    if action:
        queryset = queryset.filter(action=action)
    return list(queryset)


def test_creating_a_model_records_every_non_null_field() -> None:
    group = Group.objects.create(name="Engineering", attributes={"a": 1})
    [event] = events_for(group, EventAction.MODEL_CREATED)
    assert event.app == "auditlog.capture"
    assert event.context["model"] == {
        "app": "directory",
        "model_name": "group",
        "pk": group.pk.hex,
        "name": "Engineering",
    }
    diff = event.context["diff"]
    assert diff["name"] == {"previous_value": None, "new_value": "Engineering"}
    assert diff["attributes"] == {"previous_value": None, "new_value": {"a": 1}}
    assert diff["group_uuid"] == {"previous_value": None, "new_value": group.pk.hex}
    assert "parent" not in diff  # null fields are left out on create


def test_updating_a_model_records_only_what_changed() -> None:
    group = Group.objects.create(name="Engineering")
    group = Group.objects.get(pk=group.pk)
    group.name = "Platform"
    group.save()
    [event] = events_for(group, EventAction.MODEL_UPDATED)
    assert event.context["diff"] == {
        "name": {"previous_value": "Engineering", "new_value": "Platform"}
    }


def test_mutating_a_json_field_in_place_is_seen() -> None:
    group = Group.objects.create(name="Engineering", attributes={"level": 1})
    group = Group.objects.get(pk=group.pk)
    group.attributes["level"] = 2
    group.save()
    [event] = events_for(group, EventAction.MODEL_UPDATED)
    assert event.context["diff"] == {
        "attributes": {"previous_value": {"level": 1}, "new_value": {"level": 2}}
    }


def test_update_fields_limits_the_diff_to_the_saved_fields() -> None:
    group = Group.objects.create(name="Engineering")
    group.name = "Platform"
    group.is_superuser = True
    group.save(update_fields=["is_superuser"])
    [event] = events_for(group, EventAction.MODEL_UPDATED)
    assert event.context["diff"] == {"is_superuser": {"previous_value": False, "new_value": True}}
    # The unsaved name change shows up when it is saved.
    group.save(update_fields=["name"])
    assert events_for(group, EventAction.MODEL_UPDATED)[-1].context["diff"] == {
        "name": {"previous_value": "Engineering", "new_value": "Platform"}
    }


def test_the_diff_unit_follows_authentik() -> None:
    assert build_diff(
        {"foo": "bar", "is_active": False},
        {"foo": "baz", "is_active": True},
        update_fields=["is_active"],
    ) == {"is_active": {"new_value": True, "previous_value": False}}


def test_foreign_keys_are_recorded_by_id() -> None:
    parent = Group.objects.create(name="Parent")
    child = Group.objects.create(name="Child")
    child.parent = parent
    child.save()
    diff = events_for(child, EventAction.MODEL_UPDATED)[0].context["diff"]
    assert diff == {"parent": {"previous_value": None, "new_value": parent.pk.hex}}


def test_deleting_records_the_final_state_without_a_diff() -> None:
    group = Group.objects.create(name="Doomed", attributes={"x": 1})
    pk = group.pk
    group.delete()
    event = Event.objects.get(action=EventAction.MODEL_DELETED, context__model__pk=pk.hex)
    assert "diff" not in event.context
    assert event.context["model_state"]["name"] == "Doomed"
    assert event.context["model_state"]["attributes"] == {"x": 1}


def test_secrets_are_masked_in_diffs_and_model_state() -> None:
    user = User.objects.create_user("ana", "ana@example.com", "first-password")
    token = Token.objects.create(user=user, identifier="t1", intent=TokenIntent.API)
    created = events_for(token, EventAction.MODEL_CREATED)[0]
    assert created.context["diff"]["key"] == {"previous_value": None, "new_value": MASK}
    assert token.key not in str(created.context)
    key, pk = token.key, token.pk
    token.delete()
    deleted = Event.objects.get(action=EventAction.MODEL_DELETED, context__model__pk=pk.hex)
    assert deleted.context["model_state"]["key"] == MASK
    assert key not in str(deleted.context)


def test_a_password_change_shows_as_changed_but_masked_and_as_password_set() -> None:
    user = User.objects.create_user("ana", "ana@example.com", "first-password")
    old_hash = user.password
    user.set_password("second-password")
    user.save()
    update = events_for(user, EventAction.MODEL_UPDATED)[-1]
    assert update.context["diff"]["password"] == {"previous_value": MASK, "new_value": MASK}
    everything = str(list(Event.objects.values_list("context", flat=True)))
    assert old_hash not in everything
    assert user.password not in everything
    [password_set] = Event.objects.filter(action=EventAction.PASSWORD_SET)
    assert password_set.context == {"subject_uuid": user.uuid.hex}
    assert password_set.user["username"] == "ana"


def test_creating_a_user_records_model_created_with_who_and_how() -> None:
    user = User.objects.create_user("ana", "ana@example.com")
    # authentik 2026.8, the API's target, has no user_created: its model_created says it all.
    [event] = events_for(user, EventAction.MODEL_CREATED)
    assert {key: event.context[key] for key in ("subject_uuid", "username", "user_type")} == {
        "subject_uuid": user.uuid.hex,
        "username": "ana",
        "user_type": "internal",
    }
    assert event.context["origin"] == "unknown"
    assert event.context["model"]["pk"] == user.pk
    assert not Event.objects.exclude(action__in=EventAction.values).exists()


def test_adding_users_to_a_group_records_their_pks_and_names_on_both_sides() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    ben = User.objects.create_user("ben")
    group.users.add(ana, ben)
    event = events_for(group, EventAction.MODEL_UPDATED)[-1]
    assert event.context["diff"] == {
        "users": {
            "add": sorted([ana.pk, ben.pk]),
            "names": {str(ana.pk): "ana", str(ben.pk): "ben"},
        }
    }
    # Each user's own history says which group they joined, by name.
    assert events_for(ana, EventAction.MODEL_UPDATED)[-1].context["diff"] == {
        "groups": {"add": [group.pk.hex], "names": {group.pk.hex: "Engineering"}}
    }


def test_removing_and_clearing_members_are_recorded() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    group.users.add(ana)
    group.users.remove(ana)
    assert events_for(group, EventAction.MODEL_UPDATED)[-1].context["diff"] == {
        "users": {"remove": [ana.pk], "names": {str(ana.pk): "ana"}}
    }
    group.users.add(ana)
    group.users.clear()
    assert events_for(group, EventAction.MODEL_UPDATED)[-1].context["diff"] == {
        "users": {"clear": True, "names": {str(ana.pk): "ana"}}
    }
    assert events_for(ana, EventAction.MODEL_UPDATED)[-1].context["diff"] == {
        "groups": {"remove": [group.pk.hex], "names": {group.pk.hex: "Engineering"}}
    }


def test_changes_from_the_other_side_of_the_relation_name_that_side() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    ana.groups.add(group)
    event = events_for(ana, EventAction.MODEL_UPDATED)[-1]
    assert event.context["diff"] == {
        "groups": {"add": [group.pk.hex], "names": {group.pk.hex: "Engineering"}}
    }


def test_adding_a_member_twice_records_nothing_the_second_time() -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    group.users.add(ana)
    before = Event.objects.count()
    group.users.add(ana)
    assert Event.objects.count() == before


def test_ignored_models_are_not_captured() -> None:
    user = User.objects.create_user("ana")
    before = Event.objects.count()
    Notification.objects.create(user=user, body="hello")
    record_event(action="foo", app="tests")
    assert Event.objects.count() == before + 1  # only the explicit event


def test_every_project_model_is_captured() -> None:
    Brand.objects.create(domain="x.example.com", name="X")
    assert Event.objects.filter(
        action=EventAction.MODEL_CREATED, context__model__model_name="brand"
    ).exists()


def test_outside_a_request_the_acting_user_is_recorded() -> None:
    admin = User.objects.create_user("admin")
    with acting_user(admin):
        group = Group.objects.create(name="Engineering")
    [event] = events_for(group)
    assert event.user == {"username": "admin", "pk": admin.pk, "email": ""}
    assert event.client_ip is None
    assert "http_request" not in event.context


def test_outside_a_request_without_an_acting_user_there_is_no_user() -> None:
    group = Group.objects.create(name="Engineering")
    assert events_for(group)[0].user == {}


def test_inside_a_request_the_event_carries_the_request() -> None:
    admin = User.objects.create_user("admin")
    request = RequestFactory().patch("/api/v3/core/groups/x/", REMOTE_ADDR="81.2.69.142")
    request.user = admin
    with request_context(request):
        group = Group.objects.create(name="Engineering")
    [event] = events_for(group)
    assert event.user["username"] == "admin"
    assert event.client_ip == "81.2.69.142"
    assert event.context["http_request"]["method"] == "PATCH"


def test_acting_user_overrides_the_request_user() -> None:
    admin = User.objects.create_user("admin")
    robot = User.objects.create_user("robot")
    request = RequestFactory().post("/")
    request.user = admin
    with request_context(request), acting_user(robot):
        group = Group.objects.create(name="Engineering")
    assert events_for(group)[0].user["username"] == "robot"


def test_audit_ignore_suppresses_capture() -> None:
    with audit_ignore():
        group = Group.objects.create(name="Quiet")
        group.name = "Still quiet"
        group.save()
        group.delete()
    assert not Event.objects.filter(action__startswith="model_").exists()


def test_a_rolled_back_change_leaves_no_event() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Group.objects.create(name="Never")
        raise RuntimeError("roll back")
    assert not Group.objects.filter(name="Never").exists()
    assert not Event.objects.filter(context__model__name="Never").exists()


def test_saving_an_existing_object_costs_one_update_and_one_insert(
    django_assert_num_queries, capture_path: str
) -> None:
    group = Group.objects.create(name="Engineering")
    group = Group.objects.get(pk=group.pk)
    group.name = "Platform"
    # The previous state comes from the snapshot taken at load: no SELECT.
    # The trigger writes the event inside the UPDATE (its context rides in the same string).
    with django_assert_num_queries(1 if capture_path == "triggers" else 2) as captured:
        group.save()
    statements = [query["sql"].split()[0] for query in captured.captured_queries]
    if capture_path == "triggers":
        assert statements == ["SELECT"] and "UPDATE" in captured.captured_queries[0]["sql"]
        assert events_for(group, EventAction.MODEL_UPDATED)[0].context["diff"]["name"]
    else:  # on PostgreSQL the UPDATE still tells the (quiet) trigger to ignore it
        sql = [query["sql"] for query in captured.captured_queries]
        assert "UPDATE" in sql[0] and statements[1] == "INSERT"


def _break_the_trigger(monkeypatch: Any) -> None:
    """On the trigger path, the event write fails in the trigger (a context it cannot read)."""
    from auditlog import dbcapture

    monkeypatch.setattr(dbcapture, "context_json", lambda: '{"not json')


@pytest.mark.django_db(transaction=True)
def test_a_failing_event_write_fails_the_change(monkeypatch) -> None:
    group = Group.objects.create(name="Engineering")
    assert not connection.in_atomic_block  # autocommit, as in a shell or a task

    def broken_save(self: Event, *args: Any, **kwargs: Any) -> None:
        raise IntegrityError("the event could not be written")

    monkeypatch.setattr(Event, "save", broken_save)
    _break_the_trigger(monkeypatch)
    group.name = "Platform"
    with pytest.raises((IntegrityError, DataError)):
        group.save()
    assert Group.objects.get(pk=group.pk).name == "Engineering"


@pytest.mark.django_db(transaction=True)
def test_a_failing_event_write_fails_a_delete_and_a_membership_change(monkeypatch) -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    monkeypatch.setattr(Event, "save", lambda *a, **k: (_ for _ in ()).throw(IntegrityError("no")))
    _break_the_trigger(monkeypatch)
    with pytest.raises((IntegrityError, DataError)):
        group.users.add(ana)
    with pytest.raises((IntegrityError, DataError)):
        group.delete()
    assert Group.objects.filter(pk=group.pk).exists()
    assert not group.users.exists()


@pytest.mark.django_db(transaction=True)
def test_an_autocommit_save_writes_change_and_event_together() -> None:
    group = Group.objects.create(name="Engineering")
    assert Event.objects.filter(context__model__pk=group.pk.hex).count() == 1
