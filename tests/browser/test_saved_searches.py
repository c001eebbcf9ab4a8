"""Saved searches in a real browser: save the log's search, pin it, open its shared link as
another user, pick it in a rule and an export, and see a broken one say so."""

from __future__ import annotations

from typing import Any

import pytest

from auditlog.models import Event, EventAction
from directory.models import User
from exports.models import DataExport
from notifications.models import NotificationRule
from searches.models import SavedSearch
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)


def test_save_pin_share_and_open_a_saved_search(page: Any, admin: Any) -> None:
    Event(action=EventAction.LOGIN_FAILED, app="t", context={"username": "ana"}).save()
    Event(action=EventAction.LOGIN, app="t").save()
    log_in(page)
    page.goto('/events/?search=action = "login_failed"&ordering=-created')
    page.fill("#save-search-name", "Failed logins")
    page.check("[data-save-search] input[name=shared]")
    page.click("[data-save-search] button[type=submit]")
    page.wait_for_selector("[data-saved-banner]")
    saved = SavedSearch.objects.get()
    assert (saved.query, saved.ordering, saved.shared) == (
        'action = "login_failed"',
        "-created",
        True,
    )
    assert page.locator(".event-row").count() == 1
    page.click("[data-saved-banner] [data-pin]")
    nav = page.locator("[data-pinned-searches] a", has_text="Failed logins")
    nav.wait_for()
    # Another reader opens the shared link and gets the same search back.
    reader = grant(User.objects.create_user("reader", password=PASSWORD), "auditlog.view_event")
    page.context.clear_cookies()
    log_in(page, reader.username)
    page.goto(f"/searches/{saved.pk}/")
    assert page.locator("#search").input_value() == 'action = "login_failed"'
    assert page.locator(".event-row").count() == 1
    assert page.locator("[data-pinned-searches]").count() == 0  # pinned per user
    page.goto("/searches/")
    row = page.locator("[data-saved-search='Failed logins']")
    assert "Shared" in row.inner_text() and row.locator("[data-rename]").count() == 0


def test_pick_a_saved_search_in_a_rule_and_an_export_and_see_a_broken_one(
    page: Any, admin: Any
) -> None:
    Event(action=EventAction.LOGIN_FAILED, app="t").save()
    good = SavedSearch.objects.create(owner=admin, name="fails", query='action = "login_failed"')
    SavedSearch.objects.create(owner=admin, name="old", query='renamed_field = "x"')
    log_in(page)
    page.goto("/events/rules/new/")
    assert "no longer works" in page.locator("[data-saved-problem]").inner_text()
    page.fill("#id_name", "from saved")
    page.select_option("#id_saved_search", label="old (yours) (no longer works)")
    page.click("[data-rule-form] button[type=submit]")
    assert "renamed_field" in page.locator(".error", has_text="no longer works").inner_text()
    page.select_option("#id_saved_search", label="fails (yours)")
    page.click("[data-rule-form] button[type=submit]")
    page.wait_for_url("**/events/rules/")
    assert NotificationRule.objects.get(name="from saved").match == 'action = "login_failed"'
    page.goto("/exports/")
    page.select_option("#export-saved-search", str(good.pk))
    page.click("[data-export-saved-search] button[type=submit]")
    page.locator(".alert-success", has_text="fails").wait_for()
    assert DataExport.objects.get().query_params == {"search": 'action = "login_failed"'}
    page.goto("/searches/")
    problem = page.locator("[data-saved-search=old] [data-saved-problem]")
    assert "renamed_field" in problem.inner_text()
