"""``/api/v3/core/``: users, groups and tokens, with their audit trail and refusals."""

from __future__ import annotations

import uuid

import pytest

from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from directory.models import ANONYMOUS_USERNAME, Group, Token, TokenIntent, User
from tests.conftest import grant

pytestmark = pytest.mark.django_db

USERS = "/api/v3/core/users/"
GROUPS = "/api/v3/core/groups/"
TOKENS = "/api/v3/core/tokens/"
USER_FIELDS = {
    "pk",
    "username",
    "name",
    "is_active",
    "last_login",
    "is_superuser",
    "groups",
    "groups_obj",
    "roles",
    "roles_obj",
    "email",
    "avatar",
    "attributes",
    "uid",
    "path",
    "type",
    "uuid",
    "password_change_date",
    "date_joined",
    "last_updated",
}
GROUP_FIELDS = {
    "pk",
    "num_pk",
    "name",
    "is_superuser",
    "parent",
    "parent_name",
    "users",
    "users_obj",
    "attributes",
    "roles",
    "roles_obj",
    # authentik 2026.8's multi-parent shape (ours: at most one parent)
    "parents",
    "parents_obj",
    "inherited_roles_obj",
    "children",
    "children_obj",
}


def test_users_have_authentiks_fields(api_as, admin_user) -> None:
    group = Group.objects.create(name="Engineering", attributes={"x": 1})
    ana = User.objects.create_user(
        "ana", "ana@example.com", name="Ana Silva", attributes={"sn": "Silva"}
    )
    group.users.add(ana)
    body = api_as(admin_user).get(f"{USERS}{ana.pk}/").json()
    assert set(body) == USER_FIELDS
    assert body["pk"] == ana.pk
    assert body["groups"] == [str(group.pk)]
    assert body["groups_obj"] == [
        {
            "pk": str(group.pk),
            "num_pk": group.num_pk,
            "name": "Engineering",
            "is_superuser": False,
            "attributes": {"x": 1},
        }
    ]
    assert body["is_superuser"] is False
    assert body["type"] == "internal"
    assert body["path"] == "users"
    assert body["uuid"] == str(ana.uuid)
    assert body["avatar"].startswith("data:image/svg+xml;base64,")
    assert len(body["uid"]) == 64


def test_include_groups_false_gives_null_groups_obj(api_as, admin_user) -> None:
    body = (
        api_as(admin_user).get(USERS, {"include_groups": "false", "include_roles": "false"}).json()
    )
    row = body["results"][0]
    assert row["groups_obj"] is None
    assert row["roles_obj"] is None
    assert isinstance(row["groups"], list)


def test_the_anonymous_user_is_never_listed(api_as, admin_user) -> None:
    User.objects.anonymous()
    names = [row["username"] for row in api_as(admin_user).get(USERS).json()["results"]]
    assert ANONYMOUS_USERNAME not in names


def test_users_are_ordered_by_username(api_as, admin_user) -> None:
    for name in ("zed", "amy", "mia"):
        User.objects.create_user(name)
    names = [row["username"] for row in api_as(admin_user).get(USERS).json()["results"]]
    assert names == sorted(names)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"username": "ana"}, {"ana"}),
        ({"email": "ben@example.com"}, {"ben"}),
        ({"is_active": "false"}, {"old"}),
        ({"is_superuser": "true"}, {"admin"}),
        ({"path_startswith": "users/ext"}, {"ben"}),
        ({"type": "external"}, {"ben"}),
        ({"groups_by_name": "Engineering"}, {"ana"}),
        ({"attributes": '{"team": "red"}'}, {"ana"}),
    ],
)
def test_user_filters(api_as, admin_user, params: dict, expected: set) -> None:
    engineering = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana", "ana@example.com", attributes={"team": "red"})
    engineering.users.add(ana)
    User.objects.create_user("ben", "ben@example.com", path="users/external", type="external")
    User.objects.create_user("old", is_active=False)
    body = api_as(admin_user).get(USERS, params).json()
    assert {row["username"] for row in body["results"]} == expected


def test_invalid_user_filters_are_400s(api_as, admin_user) -> None:
    client = api_as(admin_user)
    bad_json = client.get(USERS, {"attributes": "{not json"})
    assert bad_json.status_code == 400
    assert bad_json.json() == {"attributes": ["filter: failed to parse JSON"]}
    assert client.get(USERS, {"groups_by_pk": "not-a-uuid"}).status_code == 400
    assert client.get(USERS, {"type": "robot"}).status_code == 400


def test_groups_by_pk_takes_several(api_as, admin_user) -> None:
    one, two = Group.objects.create(name="One"), Group.objects.create(name="Two")
    ana, ben = User.objects.create_user("ana"), User.objects.create_user("ben")
    one.users.add(ana)
    two.users.add(ben)
    body = api_as(admin_user).get(f"{USERS}?groups_by_pk={one.pk}&groups_by_pk={two.pk}").json()
    assert {row["username"] for row in body["results"]} == {"ana", "ben"}


def test_an_admin_creates_updates_and_deletes_users_with_audited_diffs(api_as, admin_user) -> None:
    client = api_as(admin_user)
    created = client.post(
        USERS,
        {"username": "cara", "email": "cara@example.com", "attributes": {"a": 1}},
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["pk"]
    made = Event.objects.get(action=EventAction.MODEL_CREATED, context__username="cara")
    assert made.context["origin"] == "http"
    assert made.user["username"] == "admin"
    response = client.patch(f"{USERS}{pk}/", {"email": "cara@new.example.com"}, format="json")
    assert response.status_code == 200
    update = Event.objects.filter(action=EventAction.MODEL_UPDATED, context__model__pk=pk).latest(
        "created"
    )
    assert update.context["diff"]["email"] == {
        "previous_value": "cara@example.com",
        "new_value": "cara@new.example.com",
    }
    assert update.user["username"] == "admin"
    assert update.context["http_request"]["method"] == "PATCH"
    assert update.client_ip == "127.0.0.1"
    assert client.delete(f"{USERS}{pk}/").status_code == 204
    assert Event.objects.filter(action=EventAction.MODEL_DELETED, context__model__pk=pk).exists()


def test_setting_a_password_is_audited_and_masked(api_as, admin_user) -> None:
    ana = User.objects.create_user("ana")
    client = api_as(admin_user)
    assert (
        client.post(f"{USERS}{ana.pk}/set_password/", {"password": "12"}, format="json").status_code
        == 400
    )
    response = client.post(
        f"{USERS}{ana.pk}/set_password/", {"password": "a-Much-better-pass-9"}, format="json"
    )
    assert response.status_code == 204
    ana.refresh_from_db()
    assert ana.check_password("a-Much-better-pass-9")
    assert Event.objects.filter(
        action=EventAction.PASSWORD_SET, context__subject_uuid=ana.uuid.hex
    ).exists()
    diff = (
        Event.objects.filter(action=EventAction.MODEL_UPDATED, context__model__pk=ana.pk)
        .latest("created")
        .context["diff"]
    )
    assert diff["password"] == {"previous_value": MASK, "new_value": MASK}
    assert "a-Much-better-pass-9" not in str(list(Event.objects.values_list("context", flat=True)))


def test_reading_and_writing_users_need_permissions(api_as, auditor, nobody) -> None:
    ana = User.objects.create_user("ana")
    assert api_as(nobody).get(USERS).status_code == 403
    assert api_as(nobody).get(f"{USERS}{ana.pk}/").status_code == 403
    reader = api_as(auditor)
    assert reader.get(USERS).status_code == 200
    assert reader.post(USERS, {"username": "x"}, format="json").status_code == 403
    assert reader.patch(f"{USERS}{ana.pk}/", {"name": "x"}, format="json").status_code == 403
    assert reader.delete(f"{USERS}{ana.pk}/").status_code == 403
    assert (
        reader.post(
            f"{USERS}{ana.pk}/set_password/", {"password": "a-Much-better-pass-9"}, format="json"
        ).status_code
        == 403
    )


def test_only_administrators_change_administrators(api_as, admin_user, nobody) -> None:
    manager = grant(nobody, "directory.view_user", "directory.change_user", "directory.delete_user")
    client = api_as(manager)
    assert (
        client.patch(
            f"{USERS}{admin_user.pk}/", {"email": "evil@example.com"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"{USERS}{admin_user.pk}/set_password/",
            {"password": "a-Much-better-pass-9"},
            format="json",
        ).status_code
        == 403
    )
    assert client.delete(f"{USERS}{admin_user.pk}/").status_code == 403
    admins = Group.objects.get(is_superuser=True)
    response = client.patch(f"{USERS}{manager.pk}/", {"groups": [str(admins.pk)]}, format="json")
    assert response.status_code == 403
    assert not User.objects.get(pk=manager.pk).is_superuser


def test_groups_have_authentiks_fields(api_as, admin_user) -> None:
    parent = Group.objects.create(name="Parent")
    group = Group.objects.create(name="Child", parent=parent, attributes={"notes": "n"})
    ana = User.objects.create_user("ana", "ana@example.com")
    group.users.add(ana)
    body = api_as(admin_user).get(f"{GROUPS}{group.pk}/").json()
    assert set(body) == GROUP_FIELDS
    assert body["pk"] == str(group.pk)
    assert body["num_pk"] == group.num_pk
    assert body["parent"] == str(parent.pk)
    assert body["parent_name"] == "Parent"
    assert body["parents"] == [str(parent.pk)]
    assert [item["name"] for item in body["parents_obj"]] == ["Parent"]
    assert body["children"] == [] and body["children_obj"] == []
    assert body["inherited_roles_obj"] == []
    assert body["users"] == [ana.pk]
    assert body["users_obj"][0] == {
        "pk": ana.pk,
        "username": "ana",
        "name": "",
        "is_active": True,
        "last_login": None,
        "email": "ana@example.com",
        "attributes": {},
        "uid": ana.uid,
    }
    assert body["roles"] == [] and body["roles_obj"] == []
    plain = api_as(admin_user).get(f"{GROUPS}{parent.pk}/").json()
    assert plain["parent"] is None and plain["parent_name"] is None


def test_include_users_false_gives_null_users_obj(api_as, admin_user) -> None:
    Group.objects.create(name="G")
    client = api_as(admin_user)
    for row in client.get(GROUPS, {"include_users": "false"}).json()["results"]:
        assert row["users_obj"] is None
    group = Group.objects.get(name="G")
    assert (
        client.get(f"{GROUPS}{group.pk}/", {"include_users": "false"}).json()["users_obj"] is None
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "Alpha"}, {"Alpha"}),
        ({"is_superuser": "false"}, {"Alpha", "Beta"}),
        ({"members_by_username": "ana"}, {"Alpha"}),
        ({"attributes": '{"tier": 2}'}, {"Beta"}),
        ({"search": "alp"}, {"Alpha"}),
        ({"search": "attributes.tier = 2"}, {"Beta"}),
    ],
)
def test_group_filters(api_as, admin_user, params: dict, expected: set) -> None:
    alpha = Group.objects.create(name="Alpha")
    Group.objects.create(name="Beta", attributes={"tier": 2})
    alpha.users.add(User.objects.create_user("ana"))
    body = api_as(admin_user).get(GROUPS, params).json()
    assert {row["name"] for row in body["results"]} - {"Administrators"} == expected


def test_groups_are_ordered_by_name(api_as, admin_user) -> None:
    for name in ("Zeta", "Alpha", "Mu"):
        Group.objects.create(name=name)
    names = [row["name"] for row in api_as(admin_user).get(GROUPS).json()["results"]]
    assert names == sorted(names)


def test_add_and_remove_user_record_membership_diffs(api_as, admin_user) -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    client = api_as(admin_user)
    assert (
        client.post(f"{GROUPS}{group.pk}/add_user/", {"pk": ana.pk}, format="json").status_code
        == 204
    )
    assert list(group.users.all()) == [ana]
    added = Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__model__pk=group.pk.hex
    ).latest("created")
    assert added.context["diff"] == {"users": {"add": [ana.pk], "names": {str(ana.pk): "ana"}}}
    assert added.user["username"] == "admin"
    assert (
        client.post(f"{GROUPS}{group.pk}/remove_user/", {"pk": ana.pk}, format="json").status_code
        == 204
    )
    assert not group.users.exists()
    removed = Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__model__pk=group.pk.hex
    ).latest("created")
    assert removed.context["diff"] == {"users": {"remove": [ana.pk], "names": {str(ana.pk): "ana"}}}


def test_add_user_refuses_unknown_users_and_bad_bodies(api_as, admin_user) -> None:
    group = Group.objects.create(name="Engineering")
    client = api_as(admin_user)
    assert (
        client.post(f"{GROUPS}{group.pk}/add_user/", {"pk": 999999}, format="json").status_code
        == 404
    )
    anonymous = User.objects.anonymous()
    assert (
        client.post(
            f"{GROUPS}{group.pk}/add_user/", {"pk": anonymous.pk}, format="json"
        ).status_code
        == 404
    )
    assert (
        client.post(f"{GROUPS}{group.pk}/add_user/", {"pk": "x"}, format="json").status_code == 400
    )
    assert (
        client.post(f"{GROUPS}{uuid.uuid4()}/add_user/", {"pk": 1}, format="json").status_code
        == 404
    )


def test_group_changes_need_permissions(api_as, auditor, nobody) -> None:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana")
    assert api_as(nobody).get(GROUPS).status_code == 403
    reader = api_as(auditor)
    assert reader.get(GROUPS).status_code == 200
    assert reader.post(GROUPS, {"name": "x"}, format="json").status_code == 403
    assert (
        reader.post(f"{GROUPS}{group.pk}/add_user/", {"pk": ana.pk}, format="json").status_code
        == 403
    )
    assert reader.delete(f"{GROUPS}{group.pk}/").status_code == 403
    assert not group.users.exists()


def test_only_administrators_touch_superuser_groups(api_as, admin_user, nobody) -> None:
    manager = grant(
        nobody,
        "directory.view_group",
        "directory.change_group",
        "directory.add_group",
        "directory.delete_group",
    )
    admins = Group.objects.get(is_superuser=True)
    client = api_as(manager)
    assert (
        client.post(f"{GROUPS}{admins.pk}/add_user/", {"pk": manager.pk}, format="json").status_code
        == 403
    )
    assert client.patch(f"{GROUPS}{admins.pk}/", {"name": "Mine"}, format="json").status_code == 403
    assert (
        client.post(
            GROUPS, {"name": "Shadow admins", "is_superuser": True}, format="json"
        ).status_code
        == 403
    )
    assert client.delete(f"{GROUPS}{admins.pk}/").status_code == 403
    assert not User.objects.get(pk=manager.pk).is_superuser
    assert (
        api_as(admin_user)
        .post(GROUPS, {"name": "Real admins", "is_superuser": True}, format="json")
        .status_code
        == 201
    )


def test_a_group_cannot_be_its_own_ancestor(api_as, admin_user) -> None:
    parent = Group.objects.create(name="Parent")
    child = Group.objects.create(name="Child", parent=parent)
    response = api_as(admin_user).patch(
        f"{GROUPS}{parent.pk}/", {"parent": str(child.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "parent" in response.json()


def test_tokens_are_listed_without_their_keys(api_as, admin_user) -> None:
    client = api_as(admin_user)
    body = client.get(TOKENS).json()
    assert body["results"]
    for row in body["results"]:
        assert "key" not in row
        key = Token.objects.get(identifier=row["identifier"]).key
        assert key not in str(body)


def test_view_key_shows_the_key_and_records_a_secret_view(api_as, admin_user) -> None:
    ana = User.objects.create_user("ana")
    token = Token.objects.create(user=ana, identifier="ana-siem", intent=TokenIntent.API)
    response = api_as(admin_user).get(f"{TOKENS}ana-siem/view_key/")
    assert response.status_code == 200
    assert response.json() == {"key": token.key}
    event = Event.objects.get(action=EventAction.SECRET_VIEW)
    assert event.context["secret"] == {
        "app": "directory",
        "model_name": "token",
        "pk": token.pk.hex,
        "name": "ana-siem",
    }
    assert event.user["username"] == "admin"
    assert token.key not in str(event.context)


def test_view_key_is_for_the_owner_or_the_permission_holder(api_as, nobody, auditor) -> None:
    own = Token.objects.create(user=nobody, identifier="mine", intent=TokenIntent.API)
    other = Token.objects.create(user=auditor, identifier="theirs", intent=TokenIntent.API)
    client = api_as(nobody)
    assert client.get(f"{TOKENS}mine/view_key/").json() == {"key": own.key}
    refused = client.get(f"{TOKENS}theirs/view_key/")
    assert refused.status_code == 403
    assert other.key not in refused.content.decode()
    assert api_as(None).get(f"{TOKENS}mine/view_key/").status_code == 403


def test_creating_tokens_for_others_is_for_administrators(api_as, admin_user, nobody) -> None:
    creator = grant(nobody, "directory.add_token", "directory.view_token")
    client = api_as(creator)
    own = client.post(TOKENS, {"identifier": "mine-api", "intent": "api"}, format="json")
    assert own.status_code == 201, own.content
    assert Token.objects.get(identifier="mine-api").user == creator
    theft = client.post(
        TOKENS, {"identifier": "admins-api", "intent": "api", "user": admin_user.pk}, format="json"
    )
    assert theft.status_code == 403
    assert not Token.objects.filter(identifier="admins-api").exists()
    created = Event.objects.get(action=EventAction.MODEL_CREATED, context__model__name="mine-api")
    assert created.context["diff"]["key"]["new_value"] == MASK


def test_token_lists_need_the_view_permission(api_as, nobody) -> None:
    assert api_as(nobody).get(TOKENS).status_code == 403


def test_a_group_lists_its_children_and_takes_its_parent_as_a_list(api_as, admin_user) -> None:
    client = api_as(admin_user)
    parent = Group.objects.create(name="Parent")
    created = client.post(GROUPS, {"name": "Kid", "parents": [str(parent.pk)]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["parents"] == [str(parent.pk)]
    kid = Group.objects.get(name="Kid")
    assert kid.parent == parent
    body = client.get(f"{GROUPS}{parent.pk}/").json()
    assert body["children"] == [str(kid.pk)]
    assert body["children_obj"][0]["group_uuid"] == str(kid.pk)
    hidden = client.get(f"{GROUPS}{parent.pk}/", {"include_children": "false"}).json()
    assert hidden["children_obj"] is None and hidden["children"] == [str(kid.pk)]
    other = Group.objects.create(name="Other")
    two = client.patch(
        f"{GROUPS}{kid.pk}/", {"parents": [str(parent.pk), str(other.pk)]}, format="json"
    )
    assert two.status_code == 400
    assert two.json() == {"parents": ["A group has at most one parent here."]}
    orphaned = client.patch(f"{GROUPS}{kid.pk}/", {"parents": []}, format="json")
    assert orphaned.status_code == 200
    assert orphaned.json()["parents"] == [] and orphaned.json()["parent"] is None


def test_a_tokens_user_obj_is_the_full_user(api_as, admin_user) -> None:
    Token.objects.create(identifier="full-user", user=admin_user, intent=TokenIntent.API)
    body = api_as(admin_user).get(f"{TOKENS}full-user/").json()
    assert set(body["user_obj"]) == USER_FIELDS
    assert body["user_obj"]["uuid"] == str(admin_user.uuid)
    assert body["user_obj"]["is_superuser"] is True
