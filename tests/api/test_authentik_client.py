"""authentik's own generated Python client (``authentik-client``, the release the API targets:
see ``auditlog/compat.py``) against a live server of this project: every operation the
product shares with authentik, on demo data and on every kind of event the product writes by
itself. The client's pydantic models validate every answer, so a shape, enum value or
required field that drifts from the target release's schema fails here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from authentik_client import (
    ApiClient,
    Configuration,
    CoreApi,
    EventActions,
    EventsApi,
    ReportsApi,
)
from authentik_client.models import (
    EventRequest,
    GroupRequest,
    NotificationTransportRequest,
    PatchedGroupRequest,
    PatchedNotificationRequest,
    PatchedUserRequest,
    TokenRequest,
    UserAccountRequest,
    UserPasswordSetRequest,
    UserRequest,
)
from django.db import connection

from auditlog import compat
from auditlog.models import Event, EventAction
from directory.models import ANONYMOUS_USERNAME, User
from directory.services import create_api_token
from tests.servers import running_gunicorn
from tests.workers import database_url

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "client-test-password-1"


@dataclass
class Live:
    url: str
    events: EventsApi
    core: CoreApi
    reports: ReportsApi
    admin: User


@contextmanager
def _live_server(tmp_path: Path, **extra_env: str) -> Iterator[Live]:
    from django.core.management import call_command

    call_command("demo_data", events=400, seed=7, verbosity=0)
    admin = User.objects.create_superuser("client-admin", "client@example.com", PASSWORD)
    key = create_api_token(user=admin, identifier="authentik-client").key
    media = tmp_path / "media"
    env = {"CELERY_TASK_ALWAYS_EAGER": "true", "MEDIA_ROOT": str(media), **extra_env}
    with running_gunicorn(database_url(), tmp_path, workers=1, extra_env=env) as url:
        configuration = Configuration(host=f"{url}/api/v3", access_token=key)
        with ApiClient(configuration) as client:
            yield Live(url, EventsApi(client), CoreApi(client), ReportsApi(client), admin)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with _live_server(tmp_path) as server:
        yield server


@pytest.fixture
def live_reads(tmp_path: Path) -> Iterator[Live]:
    """A live server that records reads of the trail (``auditlog/reads.py``)."""
    with _live_server(tmp_path, AUDIT_READS="true") as server:
        yield server


def _product_writes_its_own_events(live: Live) -> None:
    """What the product records by itself, driven through the running server: a new user
    (model_created), a login, failed logins up to the block, a logout, a password change,
    a token created (and its key viewed), a group change, an export."""
    site = requests.Session()
    site.get(f"{live.url}/login/", timeout=30)
    login = {"username": "client-admin", "password": PASSWORD}
    headers = {"X-CSRFToken": site.cookies.get("csrftoken", ""), "Referer": live.url}
    assert site.post(f"{live.url}/login/", data=login, headers=headers, timeout=30).ok
    stranger = requests.Session()
    stranger.get(f"{live.url}/login/", timeout=30)
    for _ in range(7):  # past LOGIN_FAILURE_LIMIT: failed, then blocked
        stranger.post(
            f"{live.url}/login/",
            data={"username": "client-admin", "password": "wrong"},
            headers={"X-CSRFToken": stranger.cookies.get("csrftoken", ""), "Referer": live.url},
            timeout=30,
        )


def test_every_shared_operation_answers_in_the_target_releases_shapes(live: Live) -> None:
    events, core, reports = live.events, live.core, live.reports
    _product_writes_its_own_events(live)

    # --- core: users, groups (with members), tokens --------------------------------------
    made = core.core_users_create(
        UserRequest(username=f"chloé.larsen-{uuid.uuid4().hex[:4]}", name="Chloé Larsen")
    )
    core.core_users_set_password_create(made.pk, UserPasswordSetRequest(password="Fresh-pass-9x!"))
    users = core.core_users_list(page_size=100)
    assert users.pagination.count >= 2 and users.results
    assert core.core_users_retrieve(made.pk).username == made.username
    core.core_users_partial_update(made.pk, PatchedUserRequest(name="Chloé L."))

    parent = core.core_groups_create(GroupRequest(name="client parents"))
    child = core.core_groups_create(GroupRequest(name="client child", parents=[parent.pk]))
    assert child.parents == [parent.pk]
    core.core_groups_add_user_create(parent.pk, UserAccountRequest(pk=made.pk))
    fetched = core.core_groups_retrieve(parent.pk)
    assert fetched.children == [child.pk]
    assert [user.pk for user in fetched.users_obj or []] == [made.pk]
    core.core_groups_remove_user_create(parent.pk, UserAccountRequest(pk=made.pk))
    assert core.core_groups_retrieve(parent.pk).users == []
    core.core_groups_partial_update(child.pk, PatchedGroupRequest(attributes={"floor": 2}))
    assert core.core_groups_list(page_size=100).results

    token = core.core_tokens_create(TokenRequest(identifier="client-made", user=made.pk))
    assert token.user_obj.username == made.username
    assert core.core_tokens_list(page_size=100).results
    assert core.core_tokens_retrieve("client-made").identifier == "client-made"
    assert core.core_tokens_view_key_retrieve("client-made").key

    users_export = core.core_users_export_create()
    assert users_export.content_type.fully_qualified_model == "directory.user"

    # --- events: the product's own, ingested ones, and demo data ----------------------------
    sent = events.events_events_create(
        EventRequest(action=EventActions.CUSTOM, app="client", context={"k": "v"})
    )
    for action in compat.TARGET_ACTIONS - {"custom_"}:
        events.events_events_create(EventRequest(action=EventActions(action), app="client"))
    assert events.events_events_retrieve(str(sent.pk)).app == "client"

    everything = events.events_events_list(page_size=1000)
    stored = Event.objects.count()
    assert everything.pagination.count == stored
    # Every action the product wrote by itself is one the target release knows.
    written = set(Event.objects.exclude(app="client").values_list("action", flat=True))
    assert written <= compat.TARGET_ACTIONS, written - compat.TARGET_ACTIONS
    assert {"model_created", "login", "login_failed", "password_set"} <= written
    page, pages = 1, everything.pagination.total_pages
    while page <= pages:  # every stored event, through the client's models
        events.events_events_list(page=page, page_size=1000)
        page += 1

    one = everything.results[0]
    filters: dict[str, Any] = {
        "action": "login",
        "actions": [EventActions.LOGIN, EventActions.LOGIN_FAILED],
        "brand_name": "authentik",
        "client_ip": "127.0.0.1",
        "context_authorized_app": str(uuid.uuid4()),
        "context_device": str(uuid.uuid4()),
        "context_model_app": "directory",
        "context_model_name": "user",
        "context_model_pk": str(made.pk),
        "ordering": "-created",
        "search": 'action = "login"',
        "username": "client-admin",
    }
    for name, value in filters.items():
        events.events_events_list(**{name: value}, page_size=20)
        events.events_events_volume_list(**{name: value})
        events.events_events_top_per_user_list(**{name: value})
        events.events_events_stats_retrieve(count_steps=["hours=24"], **{name: value})
    by_model = events.events_events_list(
        context_model_app="directory", context_model_name="user", context_model_pk=str(made.pk)
    )
    assert by_model.results and all(e.context["model"]["pk"] == made.pk for e in by_model.results)
    assert events.events_events_retrieve(str(one.pk)).pk == one.pk

    actions = events.events_events_actions_list()
    assert {action.component for action in actions} == compat.TARGET_ACTIONS
    assert events.events_events_volume_list(history_days=30)
    assert events.events_events_top_per_user_list(action="login", top_n=5) is not None
    stats = events.events_events_stats_retrieve(count_steps=["hours=1", "days=30"])
    assert stats is not None

    exported = events.events_events_export_create(action="login", ordering="-created")
    assert exported.content_type.fully_qualified_model == "auditlog.event"
    assert exported.var_query_params.get("action") == "login"

    # --- reports: exports ----------------------------------------------------------------
    listed = reports.reports_exports_list(page_size=100)
    assert {str(export.id) for export in listed.results} >= {str(exported.id)}
    done = reports.reports_exports_retrieve(str(exported.id))
    assert done.completed and done.file_url

    # --- notifications, rules, transports --------------------------------------------------
    transport = events.events_transports_create(
        NotificationTransportRequest(name="client drawer", mode="local")  # type: ignore[arg-type]
    )
    assert events.events_transports_list(page_size=100).results
    assert events.events_transports_retrieve(str(transport.pk)).name == "client drawer"
    events.events_transports_test_create(str(transport.pk))
    rules = events.events_rules_list(page_size=100)
    assert rules.results
    assert events.events_rules_retrieve(str(rules.results[0].pk)).name
    notifications = events.events_notifications_list(page_size=100)
    assert notifications.results, "the transport test notifies the requester"
    first = notifications.results[0]
    events.events_notifications_retrieve(str(first.pk))
    events.events_notifications_partial_update(str(first.pk), PatchedNotificationRequest(seen=True))
    events.events_notifications_mark_all_seen_create()

    # A chain report: an event deleted past the application is reported by the verification.
    from auditlog import chain, integrity

    chain.seal_pending()
    victim = Event.objects.filter(app="client").order_by("created").first()
    assert victim is not None
    with connection.cursor() as cursor:
        pk = Event._meta.pk.get_db_prep_value(victim.pk, connection)  # type: ignore[union-attr]
        cursor.execute("DELETE FROM auditlog_event WHERE event_uuid = %s", [pk])
    assert not integrity.verify_and_report().ok
    assert Event.objects.filter(action=EventAction.SYSTEM_TASK_EXCEPTION).exists()

    # Everything written since (the transport test, the exports' export_ready...) reads too.
    final = events.events_events_list(page_size=1000, ordering="-created")
    assert final.pagination.count == Event.objects.count()
    assert set(Event.objects.exclude(app="client").values_list("action", flat=True)) <= (
        compat.TARGET_ACTIONS
    )
    assert Event.objects.filter(action=EventAction.EXPORT_READY).exists()


def test_stored_events_with_newer_actions_still_read_in_the_client(live: Live) -> None:
    """Events stored before the target moved back (``user_created``, ``login_blocked``) are
    kept as they are and answered with the target release's action (see compat.py)."""
    old = Event.objects.create(action="user_created", app="capture", context={"username": "x"})
    blocked = Event.objects.create(action="login_blocked", app="signals", context={"a": 1})
    listed = live.events.events_events_list(page_size=1000)
    assert {str(old.event_uuid), str(blocked.event_uuid)} <= {str(e.pk) for e in listed.results}
    seen = live.events.events_events_retrieve(str(old.event_uuid))
    assert seen.action == EventActions.MODEL_CREATED
    assert seen.context["action_in_newer_releases"] == "user_created"
    blocked_seen = live.events.events_events_retrieve(str(blocked.event_uuid))
    assert blocked_seen.action == EventActions.LOGIN_FAILED
    # Nothing stored is changed.
    assert Event.objects.get(pk=old.pk).action == "user_created"
    assert live.events.events_events_volume_list() is not None
    assert live.events.events_events_stats_retrieve(count_steps=["days=1"]) is not None


def test_an_export_whose_requester_was_deleted_still_reads_in_the_client(live: Live) -> None:
    """authentik's schema requires ``requested_by``; this product keeps such an export."""
    from django.contrib.contenttypes.models import ContentType

    from exports.models import DataExport

    orphan = DataExport.objects.create(
        requested_by=None, content_type=ContentType.objects.get_for_model(Event)
    )
    listed = live.reports.reports_exports_list(page_size=100)
    [found] = [export for export in listed.results if str(export.id) == str(orphan.pk)]
    assert found.requested_by.username == ANONYMOUS_USERNAME


def test_read_events_read_in_the_client(live_reads: Live) -> None:
    """Reads on the record (searches, an event viewed, an export and its download, a token key,
    a chain verification) are events the target release's client reads like any other."""
    events, core, reports = live_reads.events, live_reads.core, live_reads.reports
    one = events.events_events_list(search='action = "login"', page_size=5).results[0]
    events.events_events_retrieve(str(one.pk))
    exported = events.events_events_export_create(action="login")
    download = requests.get(
        f"{live_reads.url}/api/v3/reports/exports/{exported.id}/download/",
        headers={
            "Authorization": f"Bearer {live_reads.events.api_client.configuration.access_token}"
        },
        timeout=30,
    )
    assert download.status_code == 200
    assert core.core_tokens_view_key_retrieve("authentik-client").key
    requests.get(
        f"{live_reads.url}/api/v3/events/chain/verify/",
        headers={
            "Authorization": f"Bearer {live_reads.events.api_client.configuration.access_token}"
        },
        timeout=30,
    ).raise_for_status()
    assert reports.reports_exports_retrieve(str(exported.id)).completed

    listed = events.events_events_list(search='app = "auditlog.reads"', page_size=100)
    kinds = {event.context["read"] for event in listed.results}
    assert {"search", "event", "export_request", "export_download", "chain_verification"} <= kinds
    assert {event.action for event in listed.results} == {EventActions.CUSTOM}
    for event in listed.results:  # each one through the client's model, one by one
        seen = events.events_events_retrieve(str(event.pk))
        assert seen.user["username"] == "client-admin"
        assert seen.client_ip == "127.0.0.1"
    secret = events.events_events_list(action="secret_view", page_size=10).results
    assert secret and secret[0].context["secret"]["name"] == "authentik-client"
    # Every stored event, the reads included, still reads in the client's models.
    events.events_events_list(page_size=1000)
