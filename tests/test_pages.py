"""The web admin's pages through the HTTP client: permissions on every page, and what they show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from auditlog.models import Event, EventAction, SystemSettings
from auditlog.services import record_event
from directory.models import Brand, Group, Token, TokenIntent, User
from notifications.models import Notification
from tests.conftest import grant

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def objects(admin_user: User) -> dict[str, Any]:
    group = Group.objects.create(name="Engineering")
    ana = User.objects.create_user("ana", "ana@example.com")
    group.users.add(ana)
    event = Event.objects.filter(action=EventAction.MODEL_UPDATED).first()
    brand = Brand.objects.create(domain="acme.example.com", name="Acme")
    return {"group": group, "ana": ana, "event": event, "brand": brand}


def pages(objects: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(url, the permission it needs; None: any signed-in user)."""
    return [
        ("/", "auditlog.view_event"),
        ("/events/", "auditlog.view_event"),
        (f"/events/{objects['event'].pk}/", "auditlog.view_event"),
        (f"/events/{objects['event'].pk}/info/", "auditlog.view_event"),
        ("/events/map/", "auditlog.view_event"),
        ("/directory/users/", "directory.view_user"),
        (f"/directory/users/{objects['ana'].pk}/", "directory.view_user"),
        ("/directory/groups/", "directory.view_group"),
        (f"/directory/groups/{objects['group'].pk}/", "directory.view_group"),
        ("/directory/tokens/", "directory.view_token"),
        ("/system/brands/", "directory.view_brand"),
        ("/system/brands/new/", "directory.add_brand"),
        (f"/system/brands/{objects['brand'].pk}/", "directory.change_brand"),
        ("/system/settings/", "auditlog.view_systemsettings"),
        ("/notifications/drawer/", None),
        ("/events/search-help/", None),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(objects) -> None:
    for url, _ in pages(objects):
        response = Client().get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_a_user_without_rights_is_refused_every_protected_page(objects, nobody) -> None:
    client = client_for(nobody)
    for url, permission in pages(objects):
        response = client.get(url)
        if permission is None:
            assert response.status_code == 200, url
        else:
            assert response.status_code == 403, url
            if response["Content-Type"].startswith("text/html"):
                assert permission in response.content.decode(), url


def test_each_page_opens_with_its_own_permission(objects, nobody) -> None:
    for url, permission in pages(objects):
        if permission is None:
            continue
        user = grant(nobody, permission)
        assert client_for(user).get(url).status_code == 200, url
        user.user_permissions.clear()


def test_an_administrator_sees_every_page(objects, admin_user) -> None:
    client = client_for(admin_user)
    for url, _ in pages(objects):
        assert client.get(url).status_code == 200, url


def test_the_auditor_reads_events_and_the_directory(objects, auditor) -> None:
    client = client_for(auditor)
    for url in ("/", "/events/", "/directory/users/", "/directory/groups/", "/system/brands/"):
        assert client.get(url).status_code == 200, url
    assert client.get("/directory/tokens/").status_code == 403
    assert client.get("/system/settings/").status_code == 403


def test_the_event_log_shows_a_malformed_query_instead_of_a_table(admin_user) -> None:
    response = client_for(admin_user).get("/events/", {"search": 'action = "login" and'})
    html = response.content.decode()
    assert response.status_code == 200
    assert "This search is not valid" in html
    assert "column 21" in html
    assert "data-event-table" not in html


def test_the_event_log_lists_searches_and_orders(admin_user) -> None:
    for action in ("login", "logout", "login_failed"):
        Event(action=action, app="tests", context={"w": action}).save()
    client = client_for(admin_user)
    html = client.get("/events/", {"search": 'context.w = "logout"'}).content.decode()
    assert html.count('class="event-row"') == 1
    assert "Logout" in html
    ordered = client.get(
        "/events/", {"search": 'context.w ~ "log"', "ordering": "action"}
    ).content.decode()
    assert ordered.index("Login Failed") > ordered.index(">Login<")
    assert ordered.index("Logout") > ordered.index("Login Failed")
    bad = client.get("/events/", {"ordering": "password"}).content.decode()
    assert "Cannot order by password" in bad


def test_filters_of_the_api_work_on_the_page(admin_user) -> None:
    Event(action="login", app="tests", client_ip="10.0.0.1").save()
    Event(action="login", app="tests", client_ip="10.0.0.2").save()
    html = client_for(admin_user).get("/events/", {"client_ip": "10.0.0.1"}).content.decode()
    assert html.count('class="event-row"') == 1
    assert "10.0.0.1" in html


def test_pages_of_the_log_are_bounded(admin_user, django_assert_max_num_queries) -> None:
    for index in range(60):
        Event(action="login", app="tests", context={"i": index}).save()
    client = client_for(admin_user)
    html = client.get("/events/", {"page_size": 25, "page": 2}).content.decode()
    assert html.count('class="event-row"') == 25
    with django_assert_max_num_queries(12):
        client.get("/events/", {"page_size": 100})


def test_the_event_page_shows_the_changes_table(admin_user) -> None:
    ana = User.objects.create_user("ana", "ana@old.example.com")
    ana = User.objects.get(pk=ana.pk)
    ana.email = "ana@new.example.com"
    ana.save()
    event = Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__model__pk=ana.pk
    ).latest("created")
    html = client_for(admin_user).get(f"/events/{event.pk}/").content.decode()
    assert "Changes made" in html
    assert "&quot;ana@old.example.com&quot;" in html
    assert "&quot;ana@new.example.com&quot;" in html


def test_membership_changes_read_by_name_with_the_id(admin_user) -> None:
    group = Group.objects.create(name="Ops")
    ana = User.objects.create_user("ana")
    group.users.add(ana)
    group.users.clear()
    client = client_for(admin_user)
    events = Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__model__pk=group.pk.hex
    ).order_by("created")
    assert (
        f"Added ana (ID {ana.pk})" in client.get(f"/events/{events[0].pk}/info/").content.decode()
    )
    assert "Cleared (ana)" in client.get(f"/events/{events[1].pk}/info/").content.decode()
    # An event written before names were kept still reads by ID.
    model = {"pk": group.pk.hex, "app": "directory", "model_name": "group", "name": "Ops"}
    old = Event(
        action=EventAction.MODEL_UPDATED,
        app="t",
        context={"model": model, "diff": {"users": {"add": [7]}}},
    )
    old.save()
    assert "Added ID 7" in client.get(f"/events/{old.pk}/info/").content.decode()


def test_an_objects_page_shows_its_own_history(admin_user) -> None:
    group = Group.objects.create(name="Ops")
    other = Group.objects.create(name="Elsewhere")
    group.name = "Operations"
    group.save()
    html = client_for(admin_user).get(f"/directory/groups/{group.pk}/").content.decode()
    assert html.count('class="event-row"') == 2  # created, renamed
    assert str(other.pk) not in html


def test_the_map_data_covers_the_whole_search(admin_user) -> None:
    for index in range(30):
        Event(
            action="login",
            app="tests",
            context={"geo": {"lat": 51.5, "long": -0.1, "country": "GB"}, "i": index},
        ).save()
    Event(
        action="logout", app="tests", context={"geo": {"lat": 48.8, "long": 2.3, "country": "FR"}}
    ).save()
    client = client_for(admin_user)
    points = client.get("/events/map/", {"page_size": 5}).json()["points"]
    assert {"lat": 51.5, "long": -0.1, "count": 30} in points
    narrowed = client.get("/events/map/", {"search": 'action = "logout"'}).json()["points"]
    assert narrowed == [{"lat": 48.8, "long": 2.3, "count": 1}]
    assert client.get("/events/map/", {"search": "action ="}).status_code == 400


def test_the_drawer_lists_only_my_unread_notifications(admin_user, nobody) -> None:
    Notification.objects.create(user=admin_user, body="mine-unread")
    Notification.objects.create(user=admin_user, body="mine-already-seen", seen=True)
    Notification.objects.create(user=nobody, body="someone-elses")
    html = client_for(admin_user).get("/notifications/drawer/").content.decode()
    assert "mine-unread" in html
    assert "someone-elses" not in html
    assert "mine-already-seen" not in html
    assert "1 unread" in html


def test_the_bell_counts_unread_notifications_on_every_page(admin_user) -> None:
    Notification.objects.create(user=admin_user, body="one")
    Notification.objects.create(user=admin_user, body="two")
    html = client_for(admin_user).get("/directory/users/").content.decode()
    assert "data-unread-count>2</span>" in html


def test_settings_change_the_retention_and_refuse_a_bad_one(admin_user, auditor) -> None:
    client = client_for(admin_user)
    bad = client.post("/system/settings/", {"event_retention": "forever"})
    assert bad.status_code == 400
    assert "is not in the correct format" in bad.content.decode()
    assert client.post("/system/settings/", {"event_retention": "weeks=3"}).status_code == 302
    assert SystemSettings.load().retention == timedelta(weeks=3)
    event = record_event(action="foo", app="tests")
    assert abs(event.expires - event.created - timedelta(weeks=3)) < timedelta(seconds=5)
    reader = grant(auditor, "auditlog.view_systemsettings")
    assert (
        client_for(reader).post("/system/settings/", {"event_retention": "days=1"}).status_code
        == 403
    )
    assert SystemSettings.load().retention == timedelta(weeks=3)


def test_creating_a_token_shows_the_key_once(admin_user) -> None:
    client = client_for(admin_user)
    response = client.post(
        "/directory/tokens/", {"identifier": "siem", "intent": "api", "expires_in_days": 30}
    )
    assert response.status_code == 302
    token = Token.objects.get(identifier="siem")
    assert token.intent == TokenIntent.API and token.user == admin_user
    first = client.get("/directory/tokens/").content.decode()
    assert token.key in first
    assert token.key not in client.get("/directory/tokens/").content.decode()


def test_only_administrators_create_tokens_for_others(nobody, admin_user) -> None:
    creator = grant(nobody, "directory.view_token", "directory.add_token")
    client = client_for(creator)
    client.post(
        "/directory/tokens/",
        {"identifier": "theft", "user": admin_user.pk, "intent": "api", "expires_in_days": 1},
    )
    token = Token.objects.get(identifier="theft")
    assert token.user == creator  # the user field is not offered, so the token is the creator's


def test_token_creation_needs_the_add_permission(nobody) -> None:
    reader = grant(nobody, "directory.view_token")
    response = client_for(reader).post(
        "/directory/tokens/", {"identifier": "x", "intent": "api", "expires_in_days": 1}
    )
    assert response.status_code == 403
    assert not Token.objects.filter(identifier="x").exists()


def test_deleting_a_token_is_a_post_with_the_permission(admin_user, nobody) -> None:
    token = Token.objects.create(user=admin_user, identifier="old", intent=TokenIntent.API)
    assert client_for(admin_user).get("/directory/tokens/old/delete/").status_code == 403
    assert client_for(nobody).post("/directory/tokens/old/delete/").status_code == 403
    assert client_for(admin_user).post("/directory/tokens/old/delete/").status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists()


def test_brands_can_be_created_and_one_stays_default(admin_user) -> None:
    client = client_for(admin_user)
    response = client.post(
        "/system/brands/new/", {"name": "Acme", "domain": "acme.example.com", "default": "on"}
    )
    assert response.status_code == 302
    assert list(Brand.objects.filter(default=True).values_list("name", flat=True)) == ["Acme"]
    assert Event.objects.filter(
        action=EventAction.MODEL_UPDATED, context__model__model_name="brand"
    ).exists()


def test_the_login_page_records_the_login_with_its_method(admin_user) -> None:
    response = Client().post(
        "/login/", {"username": "admin", "password": "correct-horse-battery-1"}
    )
    assert response.status_code == 302
    event = Event.objects.filter(action=EventAction.LOGIN).latest("created")
    assert event.context["auth_method"] == "password"
    assert event.context["http_request"]["path"] == "/login/"


def test_the_export_button_needs_the_export_permission(auditor) -> None:
    assert "data-export=" not in client_for(auditor).get("/events/").content.decode()
    exporter = grant(auditor, "exports.add_dataexport")
    html = (
        client_for(exporter)
        .get("/events/", {"search": 'action = "login"', "ordering": "action", "page": 2})
        .content.decode()
    )
    # The button exports exactly the current search and order (not the page).
    assert (
        'data-export="/api/v3/events/events/export/?search=action+%3D+%22login%22&amp;ordering=action"'
        in html
    )


def test_the_data_exports_page_shows_only_visible_exports(auditor, nobody, admin_user) -> None:
    from django.contrib.contenttypes.models import ContentType

    from exports.models import DataExport, ExportStatus

    events = ContentType.objects.get(app_label="auditlog", model="event")
    exporter = grant(auditor, "exports.add_dataexport")
    mine = DataExport.objects.create(
        requested_by=exporter,
        content_type=events,
        query_params={"search": 'action = "login"', "page": "3"},
        status=ExportStatus.FAILED,
        error="The broker was unavailable.",
    )
    theirs = DataExport.objects.create(requested_by=admin_user, content_type=events)
    assert Client().get("/exports/").status_code == 302
    assert client_for(nobody).get("/exports/").status_code == 403
    html = client_for(exporter).get("/exports/").content.decode()
    assert str(mine.pk) in html and str(theirs.pk) not in html
    assert "The broker was unavailable." in html
    assert "Events" in html
    assert "action = &quot;login&quot;" in html
    assert ">page<" not in html  # paging parameters are not part of what was exported
    assert str(theirs.pk) in client_for(admin_user).get("/exports/").content.decode()


def test_a_filter_value_the_listing_refuses_is_a_message_not_a_server_error(admin_user) -> None:
    client = client_for(admin_user)
    page = client.get("/events/", {"client_ip": "not-an-address"})
    assert page.status_code == 200
    assert (
        "client_ip: &#x27;not-an-address&#x27; is not a valid IP address." in page.content.decode()
    )
    points = client.get("/events/map/", {"client_ip": "not-an-address"})
    assert points.status_code == 400
    assert points.json() == {"detail": "client_ip: 'not-an-address' is not a valid IP address."}


def test_the_copy_key_action_is_offered_only_for_keys_the_user_may_view(admin_user, nobody) -> None:
    other = Token.objects.create(user=admin_user, identifier="admins", intent=TokenIntent.API)
    reader = grant(nobody, "directory.view_token")
    own = Token.objects.create(user=reader, identifier="mine", intent=TokenIntent.API)
    page = client_for(reader).get("/directory/tokens/").content.decode()
    assert f'data-copy-key="/api/v3/core/tokens/{own.identifier}/view_key/"' in page
    assert "/api/v3/core/tokens/admins/view_key/" not in page
    # The key itself stays behind the API's permission check.
    assert client_for(reader).get("/api/v3/core/tokens/admins/view_key/").status_code == 403
    assert other.key not in page and own.key not in page
    page = client_for(admin_user).get("/directory/tokens/").content.decode()
    assert "/api/v3/core/tokens/admins/view_key/" in page
    assert "/api/v3/core/tokens/mine/view_key/" in page
