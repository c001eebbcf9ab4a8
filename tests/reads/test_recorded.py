"""Who read what: searches, event views, exports and their downloads, token keys and chain
verifications are events with the reader, what was read and the address, visible to those
who may read the trail and to nobody else."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from auditlog import reads
from auditlog.models import Event, EventAction
from auditlog.services import record_event
from directory.models import User
from exports.models import DataExport
from tests.conftest import grant
from tests.exports.conftest import EVENTS
from tests.reads.conftest import ADDRESS, read_events

pytestmark = pytest.mark.django_db


def browser(user: User) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    return client


def test_an_api_search_is_an_event_with_reader_query_and_address(api_as, auditor) -> None:
    response = api_as(auditor).get(
        EVENTS,
        {"search": 'action = "login"', "username": "ana", "ordering": "-created", "page_size": 5},
        REMOTE_ADDR=ADDRESS,
    )
    assert response.status_code == 200
    [event] = read_events(read="search")
    assert event.action == EventAction.CUSTOM_PREFIX == "custom_"
    assert event.user["username"] == "auditor"
    assert event.client_ip == ADDRESS
    assert event.context["via"] == "api"
    assert event.context["search"] == 'action = "login"'
    assert event.context["filters"] == {"username": "ana"}
    assert event.context["ordering"] == "-created"
    assert event.context["count"] == 1
    assert event.context["http_request"]["path"] == EVENTS


def test_a_list_without_search_is_a_read_too(api_as, auditor) -> None:
    api_as(auditor).get(EVENTS)
    [event] = read_events(read="search")
    assert event.context["search"] == "" and event.context["filters"] == {}


def test_the_event_log_page_records_its_search(auditor) -> None:
    response = browser(auditor).get("/events/", {"search": 'app = "tests"', "action": "login"})
    assert response.status_code == 200
    [event] = read_events(read="search", via="page")
    assert event.context["search"] == 'app = "tests"'
    assert event.context["filters"] == {"action": "login"}
    assert (event.user["username"], event.client_ip) == ("auditor", ADDRESS)


def test_a_malformed_search_read_nothing_and_records_nothing(api_as, auditor) -> None:
    assert api_as(auditor).get(EVENTS, {"search": 'action = "'}).status_code == 400
    assert read_events() == []


def test_an_event_viewed_through_the_api_and_the_page_is_recorded(api_as, auditor) -> None:
    seen = record_event(action=EventAction.LOGIN, app="tests")
    assert api_as(auditor).get(f"{EVENTS}{seen.pk}/", REMOTE_ADDR=ADDRESS).status_code == 200
    assert browser(auditor).get(f"/events/{seen.pk}/").status_code == 200
    api, page = read_events(read="event")
    assert (api.context["via"], page.context["via"]) == ("api", "page")
    assert api.context["event_pk"] == page.context["event_pk"] == str(seen.pk)
    assert api.client_ip == page.client_ip == ADDRESS


def test_an_export_request_and_its_downloads_are_recorded(api_as, auditor, request_export) -> None:
    exporter = grant(auditor, "exports.add_dataexport")
    record_event(action=EventAction.LOGIN, app="tests")
    response = request_export(api_as(exporter), EVENTS, {"actions": "login", "format": "jsonl"})
    export = DataExport.objects.get(pk=response.json()["id"])
    assert export.is_ready
    [requested] = read_events(read="export_request")
    assert requested.context["export"] == {"pk": str(export.pk), "model": "auditlog.event"}
    assert requested.context["query"] == {"actions": "login"}
    assert requested.context["format"] == "jsonl"
    assert requested.user["username"] == "auditor"

    page = browser(exporter).get(f"/exports/{export.pk}/download/")
    api = api_as(exporter).get(f"/api/v3/reports/exports/{export.pk}/download/")
    assert page.status_code == api.status_code == 200
    by_page, by_api = read_events(read="export_download")
    assert (by_page.context["via"], by_api.context["via"]) == ("page", "api")
    assert by_page.context["export"]["pk"] == str(export.pk)
    assert by_page.context["rows"] == 1
    assert by_page.client_ip == ADDRESS and by_page.user["username"] == "auditor"


def test_a_refused_download_is_not_a_read(api_as, nobody) -> None:
    assert api_as(nobody).get(f"/api/v3/reports/exports/{Event().pk}/download/").status_code == 403
    assert read_events() == []


def test_token_keys_viewed_are_secret_view_events_without_the_key(
    api_as, admin_user, nobody
) -> None:
    from directory.services import create_api_token

    token = create_api_token(user=nobody, identifier="nobody-siem")
    api_as(admin_user).get("/api/v3/core/tokens/nobody-siem/view_key/", REMOTE_ADDR=ADDRESS)
    client = browser(admin_user)
    made = client.post(
        "/directory/tokens/",
        {"identifier": "shown-once", "intent": "api", "expires_in_days": 30},
    )
    assert made.status_code == 302
    shown = client.get("/directory/tokens/")
    assert shown.status_code == 200
    assert client.get("/directory/tokens/").status_code == 200  # shown once: one view
    api, page = Event.objects.filter(action=EventAction.SECRET_VIEW).order_by("created")
    assert api.context["secret"]["pk"] == token.pk.hex
    assert page.context["secret"]["name"] == "shown-once"
    assert page.app == "directory.views"
    for event in (api, page):
        assert event.user["username"] == "admin" and event.client_ip == ADDRESS
        assert token.key not in str(event.context)
    fresh = User.objects.get(username="admin").tokens.get(identifier="shown-once").key
    assert fresh in shown.content.decode() and fresh not in str(page.context)


def test_chain_verifications_are_recorded_from_the_api_and_the_command(
    api_as, auditor, capsys
) -> None:
    assert api_as(auditor).get("/api/v3/events/chain/verify/").status_code == 200
    call_command("verify_events", stdout=StringIO(), stderr=StringIO(), verbosity=0)
    api, command = read_events(read="chain_verification")
    assert api.context["via"] == "api" and api.user["username"] == "auditor"
    assert api.context["ok"] is True and "from_sequence" in api.context
    assert command.context["via"] == "command" and command.context["os_user"]


def test_read_events_are_visible_to_administrators_and_auditors(
    api_as, admin_user, auditor
) -> None:
    api_as(auditor).get(EVENTS, {"search": "secret stuff"}, REMOTE_ADDR=ADDRESS)
    for reader in (admin_user, auditor):
        listed = api_as(reader).get(EVENTS, {"search": 'app = "auditlog.reads"'}).json()
        found = [e for e in listed["results"] if e["context"].get("search") == "secret stuff"]
        assert len(found) == 1
        assert found[0]["user"]["username"] == "auditor"
        assert found[0]["client_ip"] == ADDRESS
    searches = 'app = "auditlog.reads" and context.read = "search"'
    found = api_as(admin_user).get(EVENTS, {"search": searches}).json()["results"]
    assert found and {event["context"]["read"] for event in found} == {"search"}
    page = browser(admin_user).get("/events/", {"search": 'app = "auditlog.reads"'})
    assert page.status_code == 200
    shown = [row["event"].context.get("search") for row in page.context["rows"]]
    assert "secret stuff" in shown
    assert str(read_events(search="secret stuff")[0].pk) in page.content.decode()


def test_a_reader_without_rights_to_the_trail_sees_no_read_event(api_as, nobody) -> None:
    record_event(action=EventAction.CUSTOM_PREFIX, app=reads.APP, context={"read": "search"})
    exporter_only = grant(nobody, "exports.add_dataexport", "directory.view_user")
    for user in (nobody, exporter_only):
        client = api_as(user)
        assert client.get(EVENTS).status_code == 403
        any_event = Event.objects.first()
        assert any_event is not None
        assert client.get(f"{EVENTS}{any_event.pk}/").status_code == 403
        assert client.get("/api/v3/events/chain/verify/").status_code == 403
        page = Client()
        page.force_login(user)
        assert page.get("/events/").status_code == 403
        assert page.get(f"/events/{any_event.pk}/").status_code == 403
    assert len(read_events()) == 1  # refusals read nothing


def test_reads_are_not_recorded_when_turned_off(api_as, auditor, settings) -> None:
    settings.AUDIT_READS = False
    api_as(auditor).get(EVENTS)
    assert read_events() == []


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/", {}, {"view": "overview"}),
        ("/events/map/", {"action": "login"}, {"view": "map", "filters": {"action": "login"}}),
        ("/directory/users/{auditor}/", {}, {"history_of": {"model": "directory.user"}}),
    ],
)
def test_every_page_that_shows_the_trail_records_a_read(auditor, path, params, expected) -> None:
    response = browser(auditor).get(path.format(auditor=auditor.pk), params)
    assert response.status_code == 200
    [event] = read_events(read="search", via="page")
    for key, value in expected.items():
        if isinstance(value, dict) and key == "history_of":
            assert event.context[key] == {**value, "pk": str(auditor.pk)}
        else:
            assert event.context[key] == value
    assert (event.user["username"], event.client_ip) == ("auditor", ADDRESS)


def test_a_row_opened_on_the_log_page_is_an_event_read(auditor) -> None:
    seen = record_event(action=EventAction.LOGIN, app="tests")
    assert browser(auditor).get(f"/events/{seen.pk}/info/").status_code == 200
    [event] = read_events(read="event")
    assert event.context["event_pk"] == str(seen.pk) and event.context["via"] == "page"


@pytest.mark.parametrize(
    ("endpoint", "params"),
    [
        ("volume", {"action": "login"}),
        ("stats", {"count_steps": "days=1"}),
        ("top_per_user", {"action": "login"}),
    ],
)
def test_counts_over_the_trail_are_reads_of_it(api_as, auditor, endpoint, params) -> None:
    assert api_as(auditor).get(f"{EVENTS}{endpoint}/", params).status_code == 200
    [event] = read_events(read="search", view=endpoint)
    assert event.user["username"] == "auditor" and event.context["via"] == "api"


def test_a_read_event_opened_is_one_more_read_and_no_more(api_as, admin_user, auditor) -> None:
    api_as(auditor).get(EVENTS, {"search": "x", "username": "ana"})
    [searched] = read_events()
    client = browser(admin_user)
    for _ in range(3):
        page = client.get(f"/events/{searched.pk}/")
        assert page.status_code == 200 and "Searched the event log" in page.content.decode()
    assert [e.context["read"] for e in read_events()] == ["search", "event"]
    assert read_events(read="event")[0].context["event_pk"] == str(searched.pk)
