"""Every page, endpoint and download, visited as an anonymous visitor, a user without rights, an
auditor who may only read, and an administrator: one table of expected answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.test import Client

from auditlog.models import Event, EventAction
from directory.models import Brand, Group, Token, TokenIntent, User
from directory.services import create_api_token
from exports.models import DataExport, ExportStatus
from notifications.models import Notification, NotificationRule, NotificationTransport
from searches.models import SavedSearch
from sources.services import create_source
from streams.models import Destination

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "nobody", "auditor", "admin")


@dataclass(frozen=True)
class Visit:
    method: str
    url: str
    expected: tuple[int, int, int, int]  # anonymous, nobody, auditor, admin
    body: Any = None
    api: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


LOGIN = 302  # pages send anonymous visitors to the login page
DENIED = 403

# {names} are filled in from the objects fixture.
MATRIX = [
    # The web admin.
    Visit("GET", "/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/{event}/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/{event}/info/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/map/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/chart/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/events/search-help/", (LOGIN, 200, 200, 200), api=False),
    Visit("GET", "/notifications/drawer/", (LOGIN, 200, 200, 200), api=False),
    Visit("GET", "/events/rules/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/events/rules/new/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/events/rules/{rule}/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("POST", "/events/rules/{rule}/delete/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit("GET", "/events/transports/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/events/transports/new/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/events/transports/{transport}/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit(
        "POST", "/events/transports/{transport}/delete/", (LOGIN, DENIED, DENIED, 302), api=False
    ),
    Visit("GET", "/exports/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/searches/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/searches/{saved}/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("POST", "/searches/{saved}/delete/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit("GET", "/exports/{export}/download/", (LOGIN, 404, 404, 200), api=False),
    Visit("GET", "/directory/users/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/directory/users/{ana}/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/directory/groups/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/directory/groups/{group}/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/directory/tokens/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit(
        "POST",
        "/directory/tokens/",
        (LOGIN, DENIED, DENIED, 302),
        {"identifier": "new-one", "intent": "api", "expires_in_days": 1},
        api=False,
    ),
    Visit("POST", "/directory/tokens/ana-token/delete/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit("GET", "/system/brands/", (LOGIN, DENIED, 200, 200), api=False),
    Visit("GET", "/system/brands/new/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/brands/{brand}/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/settings/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/sources/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/sources/new/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/sources/{source}/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("POST", "/system/sources/{source}/delete/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit("GET", "/system/streams/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/streams/new/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("GET", "/system/streams/{stream}/", (LOGIN, DENIED, DENIED, 200), api=False),
    Visit("POST", "/system/streams/{stream}/pause/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit(
        "POST",
        "/system/streams/{stream}/replay/",
        (LOGIN, DENIED, DENIED, 302),
        {"from_position": "1"},
        api=False,
    ),
    Visit("POST", "/system/streams/{stream}/delete/", (LOGIN, DENIED, DENIED, 302), api=False),
    Visit(
        "POST",
        "/system/settings/",
        (LOGIN, DENIED, DENIED, 302),
        {"event_retention": "days=30"},
        api=False,
    ),
    # The API: events (append-only).
    Visit("GET", "/api/v3/events/events/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/events/{event}/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/events/stream/", (DENIED, DENIED, 200, 200)),
    Visit(
        "POST",
        "/api/v3/events/events/",
        (DENIED, DENIED, DENIED, 201),
        {"action": "custom_x", "app": "t"},
    ),
    Visit(
        "POST",
        "/api/v3/events/events/bulk/",
        (DENIED, DENIED, DENIED, 201),
        [{"action": "custom_x", "app": "t"}],
    ),
    Visit(
        "PUT",
        "/api/v3/events/events/{event}/",
        (DENIED, DENIED, DENIED, 405),
        {"action": "custom_x", "app": "t"},
    ),
    Visit("PATCH", "/api/v3/events/events/{event}/", (DENIED, DENIED, DENIED, 405), {"app": "t"}),
    Visit("DELETE", "/api/v3/events/events/{event}/", (DENIED, DENIED, DENIED, 405)),
    Visit("GET", "/api/v3/events/events/actions/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/events/top_per_user/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/events/volume/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/events/stats/?count_steps=hours=1", (DENIED, DENIED, 200, 200)),
    Visit(
        "GET",
        "/api/v3/events/events/suggestions/?field=auditlog.event.action",
        (DENIED, DENIED, 200, 200),
    ),
    Visit("POST", "/api/v3/events/events/export/", (DENIED, DENIED, DENIED, 201)),
    # Notifications: everyone signed in has their own.
    Visit("GET", "/api/v3/events/notifications/", (DENIED, 200, 200, 200)),
    Visit("GET", "/api/v3/events/notifications/{notification}/", (DENIED, 404, 404, 200)),
    Visit(
        "PATCH",
        "/api/v3/events/notifications/{notification}/",
        (DENIED, 404, 404, 200),
        {"seen": True},
    ),
    Visit("DELETE", "/api/v3/events/notifications/{notification}/", (DENIED, 404, 404, 204)),
    Visit("POST", "/api/v3/events/notifications/mark_all_seen/", (DENIED, 204, 204, 204)),
    # Saved searches: the auditor sees the administrator's shared one, but may not change it.
    Visit("GET", "/api/v3/events/saved_searches/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/saved_searches/{saved}/", (DENIED, DENIED, 200, 200)),
    Visit(
        "POST",
        "/api/v3/events/saved_searches/",
        (DENIED, DENIED, 201, 201),
        {"name": "new-search", "query": 'action = "login"'},
    ),
    Visit(
        "PATCH",
        "/api/v3/events/saved_searches/{saved}/",
        (DENIED, DENIED, DENIED, 200),
        {"name": "renamed"},
    ),
    Visit("DELETE", "/api/v3/events/saved_searches/{saved}/", (DENIED, DENIED, DENIED, 204)),
    # Rules, transports, deliveries.
    Visit("GET", "/api/v3/events/rules/", (DENIED, DENIED, DENIED, 200)),
    Visit(
        "POST",
        "/api/v3/events/rules/",
        (DENIED, DENIED, DENIED, 201),
        {"name": "new-rule", "match": 'action = "login"'},
    ),
    Visit(
        "PATCH", "/api/v3/events/rules/{rule}/", (DENIED, DENIED, DENIED, 200), {"enabled": False}
    ),
    Visit("DELETE", "/api/v3/events/rules/{rule}/", (DENIED, DENIED, DENIED, 204)),
    Visit("GET", "/api/v3/events/transports/", (DENIED, DENIED, DENIED, 200)),
    Visit(
        "POST",
        "/api/v3/events/transports/",
        (DENIED, DENIED, DENIED, 201),
        {"name": "new-transport", "mode": "local"},
    ),
    Visit("POST", "/api/v3/events/transports/{transport}/test/", (DENIED, DENIED, DENIED, 200)),
    Visit("DELETE", "/api/v3/events/transports/{transport}/", (DENIED, DENIED, DENIED, 204)),
    Visit("GET", "/api/v3/events/deliveries/", (DENIED, DENIED, DENIED, 200)),
    # The directory.
    Visit("GET", "/api/v3/core/users/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/core/users/{ana}/", (DENIED, DENIED, 200, 200)),
    Visit("POST", "/api/v3/core/users/", (DENIED, DENIED, DENIED, 201), {"username": "newcomer"}),
    Visit("PATCH", "/api/v3/core/users/{ana}/", (DENIED, DENIED, DENIED, 200), {"name": "Ana"}),
    Visit(
        "POST",
        "/api/v3/core/users/{ana}/set_password/",
        (DENIED, DENIED, DENIED, 204),
        {"password": "a-Much-better-pass-9"},
    ),
    Visit("DELETE", "/api/v3/core/users/{ana}/", (DENIED, DENIED, DENIED, 204)),
    Visit("POST", "/api/v3/core/users/export/", (DENIED, DENIED, DENIED, 201)),
    Visit("GET", "/api/v3/core/groups/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/core/groups/{group}/", (DENIED, DENIED, 200, 200)),
    Visit("POST", "/api/v3/core/groups/", (DENIED, DENIED, DENIED, 201), {"name": "New group"}),
    Visit(
        "PATCH", "/api/v3/core/groups/{group}/", (DENIED, DENIED, DENIED, 200), {"name": "Renamed"}
    ),
    Visit(
        "POST",
        "/api/v3/core/groups/{group}/add_user/",
        (DENIED, DENIED, DENIED, 204),
        {"pk": "{ana}"},
    ),
    Visit(
        "POST",
        "/api/v3/core/groups/{group}/remove_user/",
        (DENIED, DENIED, DENIED, 204),
        {"pk": "{ana}"},
    ),
    Visit("DELETE", "/api/v3/core/groups/{group}/", (DENIED, DENIED, DENIED, 204)),
    Visit("GET", "/api/v3/core/tokens/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/core/tokens/ana-token/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/core/tokens/ana-token/view_key/", (DENIED, DENIED, DENIED, 200)),
    Visit("DELETE", "/api/v3/core/tokens/ana-token/", (DENIED, DENIED, DENIED, 204)),
    # Exports.
    Visit("GET", "/api/v3/reports/exports/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/reports/exports/{export}/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/reports/exports/{export}/download/", (DENIED, DENIED, DENIED, 200)),
    Visit("DELETE", "/api/v3/reports/exports/{export}/", (DENIED, DENIED, DENIED, 204)),
    # authentik sources (our own extension): administrators only.
    Visit("GET", "/api/v3/sources/authentik/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/sources/authentik/{source}/", (DENIED, DENIED, DENIED, 200)),
    Visit(
        "POST",
        "/api/v3/sources/authentik/",
        (DENIED, DENIED, DENIED, 201),
        {"name": "new-source", "url": "https://auth.example.com", "token": "t"},
    ),
    Visit(
        "PATCH",
        "/api/v3/sources/authentik/{source}/",
        (DENIED, DENIED, DENIED, 200),
        {"enabled": False},
    ),
    Visit(
        "POST", "/api/v3/sources/authentik/{source}/webhook_token/", (DENIED, DENIED, DENIED, 200)
    ),
    Visit("DELETE", "/api/v3/sources/authentik/{source}/", (DENIED, DENIED, DENIED, 204)),
    # SIEM stream destinations (our own extension): administrators only.
    Visit("GET", "/api/v3/streams/destinations/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/streams/destinations/{stream}/", (DENIED, DENIED, DENIED, 200)),
    Visit("GET", "/api/v3/streams/destinations/{stream}/health/", (DENIED, DENIED, DENIED, 200)),
    Visit(
        "POST",
        "/api/v3/streams/destinations/",
        (DENIED, DENIED, DENIED, 201),
        {"name": "new-stream", "transport": "file"},
    ),
    Visit(
        "PATCH",
        "/api/v3/streams/destinations/{stream}/",
        (DENIED, DENIED, DENIED, 200),
        {"batch_size": 10},
    ),
    Visit("POST", "/api/v3/streams/destinations/{stream}/pause/", (DENIED, DENIED, DENIED, 200)),
    Visit("POST", "/api/v3/streams/destinations/{stream}/resume/", (DENIED, DENIED, DENIED, 200)),
    Visit(
        "POST",
        "/api/v3/streams/destinations/{stream}/replay/",
        (DENIED, DENIED, DENIED, 200),
        {"from_position": "1"},
    ),
    Visit("DELETE", "/api/v3/streams/destinations/{stream}/", (DENIED, DENIED, DENIED, 204)),
    # Tamper evidence.
    Visit("GET", "/api/v3/events/chain/verify/", (DENIED, DENIED, 200, 200)),
    Visit("GET", "/api/v3/events/chain/checkpoints/", (DENIED, DENIED, 200, 200)),
    # The schema and its docs.
    Visit("GET", "/api/v3/schema/", (DENIED, 200, 200, 200)),
    Visit("GET", "/api/v3/schema/swagger/", (DENIED, 200, 200, 200)),
    Visit("GET", "/api/v3/schema/swagger/?script", (DENIED, 200, 200, 200)),
    Visit("GET", "/api/v3/schema/redoc/", (DENIED, 200, 200, 200)),
    # ReDoc's library itself, like any static file.
    Visit("GET", "/api/v3/schema/redoc/redoc.standalone.js", (200, 200, 200, 200)),
]


@pytest.fixture
def people(admin_user: User, auditor: User, nobody: User) -> dict[str, User | None]:
    return {"anonymous": None, "nobody": nobody, "auditor": auditor, "admin": admin_user}


@pytest.fixture
def objects(admin_user: User, settings: Any, tmp_path: Any) -> dict[str, str]:
    settings.MEDIA_ROOT = str(tmp_path)
    ana = User.objects.create_user("ana", "ana@example.com")
    group = Group.objects.create(name="Engineering")
    Token.objects.create(user=ana, identifier="ana-token", intent=TokenIntent.API)
    event = Event.objects.filter(action=EventAction.MODEL_CREATED).first()
    notification = Notification.objects.create(user=admin_user, body="for the admin")
    rule = NotificationRule.objects.create(name="matrix-rule", match='action = "login"')
    transport = NotificationTransport.objects.create(name="matrix-transport")
    export = DataExport.objects.create(
        requested_by=admin_user,
        content_type=ContentType.objects.get_for_model(Event),
        status=ExportStatus.COMPLETED,
        completed=True,
        row_count=1,
    )
    export.file.save(f"events_{export.pk}.csv", ContentFile(b"Pk\n1\n"))
    brand = Brand.objects.create(domain="acme.example.com", name="Acme")
    saved = SavedSearch.objects.create(owner=admin_user, name="matrix-search", shared=True)
    source, _ = create_source(name="matrix-source", url="https://auth.example.com", token="t")
    stream = Destination.objects.create(name="matrix-stream", transport="file")
    return {
        "source": str(source.pk),
        "stream": str(stream.pk),
        "ana": str(ana.pk),
        "group": str(group.pk),
        "event": str(event.pk),
        "notification": str(notification.pk),
        "rule": str(rule.pk),
        "transport": str(transport.pk),
        "export": str(export.pk),
        "brand": str(brand.pk),
        "saved": str(saved.pk),
    }


def fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        filled = value.format(**names)
        return (
            int(filled)
            if value.startswith("{") and value.endswith("}") and filled.isdigit()
            else filled
        )
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    return value


def client_for(visit: Visit, user: User | None) -> Client:
    if user is None:
        return Client()
    if visit.api:
        return Client(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user=user).key}")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("visit", MATRIX, ids=str)
@pytest.mark.parametrize("persona", PERSONAS)
def test_the_permission_matrix(
    visit: Visit, persona: str, people, objects, django_capture_on_commit_callbacks
) -> None:
    client = client_for(visit, people[persona])
    url = visit.url.format(**objects)
    body = fill(visit.body, objects)
    with django_capture_on_commit_callbacks(execute=True):
        if visit.method == "GET":
            response = client.get(url)
        elif visit.api:
            data = "" if body is None else json.dumps(body)
            response = client.generic(visit.method, url, data, content_type="application/json")
        else:
            response = client.post(url, body or {})
    expected = visit.expected[PERSONAS.index(persona)]
    assert response.status_code == expected, (
        f"{persona}: {visit} answered {response.status_code}, expected {expected}"
    )
    if persona == "anonymous" and not visit.api:
        assert response["Location"].startswith("/login/")


def test_the_matrix_covers_every_api_route() -> None:
    from project.api_urls import router

    covered = {visit.url.split("?")[0] for visit in MATRIX}
    for prefix, _viewset, basename in router.registry:
        assert any(url.startswith(f"/api/v3/{prefix}/") for url in covered), (
            f"{basename} is not in the matrix"
        )
