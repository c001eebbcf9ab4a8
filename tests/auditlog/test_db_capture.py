"""Database-side capture (PostgreSQL): the changes that bypass signals are recorded by the
triggers, with the right diff, actor (or the database marker) and transaction semantics, and
every path records the same event for the same change."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import RequestFactory

from auditlog.capture import acting_user, audit_ignore, request_context
from auditlog.models import Event, EventAction
from auditlog.sanitize import MASK
from directory.models import Brand, Group, Token, TokenIntent, User

# Every test runs on each capture path the database has (triggers on PostgreSQL, signals and
# the bulk wrappers of auditlog.bulkcapture everywhere); raw SQL is seen by triggers only.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("capture_path")]
triggers_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="database-side capture is PostgreSQL's"
)


def events_for(instance: Any, action: str = EventAction.MODEL_UPDATED) -> list[Event]:
    return list(Event.objects.for_model(instance).filter(action=action).order_by("created"))


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_user("root", email="root@example.com")


def test_queryset_update_is_recorded_with_the_actor_and_diff(admin_user: User) -> None:
    ana = User.objects.create_user("ana")
    with acting_user(admin_user):
        assert User.objects.filter(pk=ana.pk).update(is_active=False, name="Ana") == 1
    [event] = events_for(ana)
    assert event.user == {"username": "root", "pk": admin_user.pk, "email": "root@example.com"}
    assert event.context["diff"] == {
        "is_active": {"previous_value": True, "new_value": False},
        "name": {"previous_value": "", "new_value": "Ana"},
    }
    assert event.context["model"]["name"] == "Ana"


def test_a_rolled_back_update_leaves_no_event() -> None:
    ana = User.objects.create_user("ana")
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.filter(pk=ana.pk).update(is_active=False)
        assert len(events_for(ana)) == 1  # written with the change...
        raise RuntimeError
    assert events_for(ana) == []  # ...and gone with it


def test_bulk_create_records_each_new_row(admin_user: User) -> None:
    with acting_user(admin_user):
        created = Group.objects.bulk_create([Group(name="Ops"), Group(name="Sales")])
    for group in created:
        [event] = events_for(group, EventAction.MODEL_CREATED)
        assert event.user["username"] == "root"
        assert event.context["diff"]["name"] == {"previous_value": None, "new_value": group.name}


def test_bulk_update_records_each_changed_row() -> None:
    groups = [Group.objects.create(name="Ops"), Group.objects.create(name="Sales")]
    for group in groups:
        group.name += " team"
    Group.objects.bulk_update(groups, ["name"])
    for group in groups:
        [event] = events_for(group)
        before = group.name.removesuffix(" team")
        assert event.context["diff"] == {
            "name": {"previous_value": before, "new_value": group.name}
        }


def test_raw_sql_through_a_cursor_is_recorded_with_the_request(
    admin_user: User, capture_path: str
) -> None:
    if capture_path != "triggers":
        pytest.skip("raw SQL is captured by the triggers only (documented)")
    token = Token.objects.create(identifier="ci", user=admin_user, intent=TokenIntent.API)
    request = RequestFactory().post("/api/v3/x/", REMOTE_ADDR="192.0.2.7")
    request.user = admin_user
    with request_context(request), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE directory_token SET key = %s, description = %s WHERE token_uuid = %s",
            ["new-secret-value", "rotated 100%", token.pk],
        )
        assert cursor.rowcount == 1  # the caller sees its own statement's result
    [event] = events_for(token)
    assert event.client_ip == "192.0.2.7"
    assert event.user["username"] == "root"
    assert event.context["http_request"]["path"] == "/api/v3/x/"
    assert event.context["diff"]["key"] == {"previous_value": MASK, "new_value": MASK}
    assert event.context["diff"]["description"]["new_value"] == "rotated 100%"
    assert "new-secret-value" not in str(event.context)


def test_audit_ignore_still_silences_the_triggers() -> None:
    group = Group.objects.create(name="Ops")
    with audit_ignore():
        Group.objects.filter(pk=group.pk).update(name="Quiet")
    assert events_for(group) == []


def _psql(sql: str) -> None:
    settings = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
    command = [
        shutil.which("psql") or "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        settings.get("HOST") or "127.0.0.1",
        "-p",
        str(settings.get("PORT") or 5432),
        "-U",
        settings.get("USER") or "postgres",
        "-d",
        settings["NAME"],
        "-c",
        sql,
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(shutil.which("psql") is None, reason="needs the psql client")
def test_an_update_from_psql_is_recorded_with_the_database_user(capture_path: str) -> None:
    if capture_path != "triggers":
        pytest.skip("a session past the application is seen by the triggers only")
    group = Group.objects.create(name="Ops")
    pk = group.pk
    where = f"WHERE group_uuid = '{pk}'"  # a UUID of ours
    _psql(f"BEGIN; UPDATE directory_group SET name = 'Lost' {where}; ROLLBACK;")  # noqa: S608
    assert events_for(group) == []  # a rolled-back session change leaves nothing
    _psql(f"UPDATE directory_group SET is_superuser = true {where}")  # noqa: S608
    [event] = events_for(group)
    user = connection.settings_dict.get("USER") or "postgres"
    assert event.user == {"username": user, "pk": None, "email": ""}
    assert event.context["source"] == "database"
    assert event.context["database_user"] == user
    assert event.context["diff"] == {"is_superuser": {"previous_value": False, "new_value": True}}
    assert event.client_ip is None
    assert event.expires > event.created


# --- The same event whichever path records it ----------------------------------------------------

GROUP = uuid.UUID("00000000-0000-4000-8000-000000000001")
TOKEN = uuid.UUID("00000000-0000-4000-8000-000000000002")
BRAND = uuid.UUID("00000000-0000-4000-8000-000000000003")
USER = uuid.UUID("00000000-0000-4000-8000-000000000004")
# Times differ between the two runs; their format must not (ISO 8601, UTC as Z).
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def _times_hidden(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _times_hidden(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_times_hidden(item) for item in value]
    if isinstance(value, str) and ISO_TIME.match(value):
        return "<time>"
    return value


def _scenario(actor: User) -> None:
    request = RequestFactory().get("/groups/?q=1&token=abc", REMOTE_ADDR="81.2.69.142")
    request.user = actor
    request.request_id = "req-1"  # type: ignore[attr-defined]  # as the middleware sets it
    with request_context(request):
        Brand.objects.create(brand_uuid=BRAND, domain="example.com", name="Example")
        group = Group.objects.create(
            group_uuid=GROUP, num_pk=4242, name="Ops", attributes={"api_key": "k1"}
        )
        group.name, group.is_superuser = "Platform", True
        group.save()
        ana = User.objects.create_user("ana", email="ana@example.com", pk=9001, uuid=USER)
        group.users.add(ana)
        ana.set_password("a-new-Password-1")
        ana.save()
        ana.groups.remove(group)
        token = Token.objects.create(
            token_uuid=TOKEN, identifier="ci", user=ana, intent=TokenIntent.API, key="s3cr3t-key"
        )
        token.description = "Bearer abcdefghijkl for the CI"
        token.save()
        group.users.add(ana)
        group.users.clear()
        token.delete()
        group.delete()


def _recorded(settings: Any, path: str) -> list[tuple[Any, ...]]:
    settings.AUDIT_DB_CAPTURE = path == "triggers"
    actor = User.objects.get(username="root")
    with transaction.atomic():
        before = set(Event.objects.values_list("pk", flat=True))
        _scenario(actor)
        events = Event.objects.filter(app="auditlog.capture").exclude(pk__in=before)
        events = events.order_by("created")
        rows = [
            (e.action, e.user, e.client_ip, e.brand, _times_hidden(e.context))
            for e in events
            if e.context.get("model", {}).get("model_name") != "systemsettings"
        ]
        assert len(rows) > 10
        transaction.set_rollback(True)
    return rows


@triggers_only
def test_both_paths_record_the_same_events(settings: Any, geoip_dbs: Any, admin_user: User) -> None:
    by_triggers = _recorded(settings, "triggers")
    by_signals = _recorded(settings, "signals")
    assert [row[0] for row in by_triggers] == [row[0] for row in by_signals]
    for triggered, signalled in zip(by_triggers, by_signals, strict=True):
        for index, (left, right) in enumerate(zip(triggered, signalled, strict=True)):
            if isinstance(left, dict) and isinstance(right, dict):
                keys = sorted(set(left) | set(right))
                differing = {
                    k: (left.get(k), right.get(k)) for k in keys if left.get(k) != right.get(k)
                }
                assert not differing, (triggered[0], index, differing)
        assert triggered == signalled
    actions = [row[0] for row in by_triggers]
    assert actions.count(EventAction.MODEL_DELETED) == 2
    assert actions.count(EventAction.PASSWORD_SET) == 1
    contexts = [row[4] for row in by_triggers]
    missing = [(row[0], row[4]["model"]) for row in by_triggers if "geo" not in row[4]]
    assert not missing
    assert all(context["geo"]["city"] == "London" for context in contexts)
    assert all(context["http_request"]["request_id"] == "req-1" for context in contexts)


# --- The policy decides the masked columns when the triggers are generated ------------------------


def test_the_policy_decides_which_columns_the_triggers_mask(monkeypatch: Any) -> None:
    from auditlog import triggers

    [_, update, _] = triggers.model_triggers(Token)
    masked_description = f"o.\"description\" IS NULL THEN 'null'::jsonb ELSE to_jsonb('{MASK}'"
    assert masked_description not in update.func
    assert "o.\"key\" IS NULL THEN 'null'::jsonb ELSE to_jsonb(" in update.func
    monkeypatch.setattr(triggers, "is_secret_key", lambda name: name in {"key", "description"})
    [_, changed, _] = triggers.model_triggers(Token)
    assert masked_description in changed.func  # a new policy is new SQL, with a new hash


@triggers_only
def test_a_missing_or_outdated_trigger_is_reported_until_migrate_reinstalls_it(
    monkeypatch: Any,
) -> None:
    import pgtrigger

    from auditlog import triggers

    assert triggers.check_triggers(databases=["default"]) == []
    model, trigger = next((m, t) for m, t in triggers.registered() if m is Token)
    outdated = pgtrigger.Trigger(
        name=trigger.name,
        when=trigger.when,
        operation=trigger.operation,
        level=trigger.level,
        referencing=trigger.referencing,
        declare=trigger.declare,
        func=trigger.func.replace("RETURN NULL;", "RETURN NULL; /* an older policy */", 1),
    )
    outdated.install(model)  # what an older policy generated
    [warning] = triggers.check_triggers(databases=["default"])
    assert warning.id == "auditlog.W020" and "OUTDATED" in warning.msg
    trigger.install(model)  # what migrate does
    assert triggers.check_triggers(databases=["default"]) == []
