"""The saved-search pages, and picking a saved search in a rule and an export: through the
HTTP client, with the refusals."""

from __future__ import annotations

import re
from html import escape

import pytest
from django.test import Client

from auditlog.models import Event, EventAction
from directory.models import User
from exports.models import DataExport
from notifications.models import NotificationRule
from searches.models import SavedSearch
from searches.services import save_search

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_event_log_saves_its_search_and_the_link_restores_it(admin_user: User) -> None:
    Event(action=EventAction.LOGIN_FAILED, app="t", context={"username": "ana"}).save()
    Event(action=EventAction.LOGIN, app="t").save()
    client = signed_in(admin_user)
    page = client.get("/events/", {"search": 'action = "login_failed"'}).content.decode()
    assert "data-save-search" in page
    answer = client.post(
        "/searches/new/",
        {"name": "Fails", "search": 'action = "login_failed"', "ordering": "-created"},
    )
    saved = SavedSearch.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/searches/{saved.pk}/"
    opened = client.get(f"/searches/{saved.pk}/").content.decode()
    assert "Saved search: Fails" in opened
    labels = re.findall(r'class="action-label">([^<]*)<', opened)
    assert labels == [str(EventAction.LOGIN_FAILED.label)]
    # Pinned searches appear in the navigation of every page.
    client.post(f"/searches/{saved.pk}/pin/", {"pinned": "true", "next": "//evil.example"})
    assert "data-pinned-searches" in client.get("/").content.decode()
    client.post(f"/searches/{saved.pk}/edit/", {"name": "Failures"})
    assert SavedSearch.objects.get().name == "Failures"
    client.post(f"/searches/{saved.pk}/delete/")
    assert not SavedSearch.objects.exists()


def test_a_saved_search_that_no_longer_parses_says_so_where_it_is_used(admin_user: User) -> None:
    broken = SavedSearch.objects.create(owner=admin_user, name="old", query='renamed = "x"')
    client = signed_in(admin_user)
    message = escape('The saved search "old" no longer works')
    assert message in client.get("/searches/").content.decode()
    assert message in client.get(f"/searches/{broken.pk}/").content.decode()
    assert message in client.get("/events/rules/new/").content.decode()
    assert message in client.get("/exports/").content.decode()
    refused = client.post(
        "/events/rules/new/", {"name": "r", "severity": "notice", "saved_search": broken.pk}
    )
    assert refused.status_code == 400 and message in refused.content.decode()
    client.post("/exports/saved-search/", {"saved_search": broken.pk, "format": "csv"})
    assert not DataExport.objects.exists()
    # A rule whose match was written before a field was renamed says so on its pages.
    rule = NotificationRule(name="legacy", match='action = "login"', enabled=False)
    rule.save()
    NotificationRule.objects.filter(pk=rule.pk).update(match='renamed = "x"')
    assert "This match no longer works" in client.get("/events/rules/").content.decode()
    edit = client.get(f"/events/rules/{rule.pk}/").content.decode()
    assert "This rule's match no longer works" in edit


def test_a_rule_and_an_export_take_a_saved_search(admin_user: User) -> None:
    saved = save_search(
        user=admin_user, name="Fails", query='app = "t"', filters={"actions": "login_failed"}
    )
    client = signed_in(admin_user)
    assert "Fails (yours)" in client.get("/events/rules/new/").content.decode()
    created = client.post(
        "/events/rules/new/", {"name": "r", "severity": "notice", "saved_search": saved.pk}
    )
    assert created.status_code == 302
    assert (
        NotificationRule.objects.get(name="r").match
        == '(app = "t") and (action in ("login_failed"))'
    )
    client.post("/exports/saved-search/", {"saved_search": saved.pk, "format": "jsonl"})
    export = DataExport.objects.get()
    assert export.query_params == {"search": 'app = "t"', "actions": "login_failed"}
    assert export.format == "jsonl"


def test_pages_refuse_users_who_may_not_read_events_and_others_searches(
    nobody: User, auditor: User, admin_user: User
) -> None:
    private = save_search(user=admin_user, name="mine")
    assert signed_in(nobody).get("/searches/").status_code == 403
    assert signed_in(nobody).post("/searches/new/", {"name": "x"}).status_code == 403
    assert signed_in(auditor).get(f"/searches/{private.pk}/").status_code == 404
    assert signed_in(auditor).post(f"/searches/{private.pk}/delete/").status_code == 404
    shared = save_search(user=admin_user, name="team", shared=True)
    assert signed_in(auditor).post(f"/searches/{shared.pk}/delete/").status_code == 403
    assert (
        signed_in(auditor).post("/exports/saved-search/", {"saved_search": shared.pk}).status_code
        == 403
    )
    assert SavedSearch.objects.count() == 2
    assert Client().get("/searches/").status_code == 302
