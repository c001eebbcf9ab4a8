"""What an administrator does in the web admin, in a real browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from auditlog.demo import load_demo_data
from auditlog.models import Event, EventAction
from auditlog.services import record_event
from directory.models import Token, User
from directory.services import create_api_token
from notifications.models import Notification
from tests.browser.conftest import PASSWORD, log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(admin: Any) -> None:
    load_demo_data(events=1500, seed=5)


def test_logging_in_through_the_login_page(page: Any, admin: Any) -> None:
    page.goto("/events/")
    assert "/login/" in page.url  # anonymous visitors are sent to log in
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator(".alert-error").is_visible()
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Event Log")
    assert urlparse(page.url).path == "/events/"
    assert Event.objects.filter(action=EventAction.LOGIN, user__username="admin").exists()
    assert Event.objects.filter(action=EventAction.LOGIN_FAILED, context__username="admin").exists()


def test_searching_with_autocomplete(page: Any, demo: None) -> None:
    log_in(page)
    page.goto("/events/")
    search = page.locator("textarea[data-djangoql]")
    search.click()
    search.type("context.geo.")
    completion = page.locator(".djangoql-completion")
    completion.locator("li", has_text="country").wait_for()
    assert completion.locator("li", has_text="city").is_visible()
    page.keyboard.press("Escape")  # ESC dismisses the drop-down
    assert completion.is_hidden()
    search.type("cou")
    completion.locator("li", has_text="country").click()
    assert search.input_value().startswith("context.geo.country")
    search.type('= "DE"')
    page.keyboard.press("Enter")
    # The results are what counts, not the page's "load" event: under load its map and chart
    # assets made that wait run out of time.
    page.wait_for_url("**/events/?search=*", wait_until="commit")
    page.wait_for_load_state("domcontentloaded")
    page.locator("[data-event-table] .event-row").first.wait_for()
    query = parse_qs(urlparse(page.url).query)
    assert query["search"] == ['context.geo.country = "DE"']
    rows = page.locator(".event-row")
    assert rows.count() > 0
    for index in range(rows.count()):
        assert "Germany" in rows.nth(index).inner_text()


def test_a_malformed_query_shows_what_is_wrong_and_where(page: Any, demo: None) -> None:
    log_in(page)
    page.goto("/events/?search=" + 'action = "login" and')
    error = page.locator("[data-search-error]")
    assert error.is_visible()
    assert "Unexpected end of input" in error.inner_text()
    assert "column 21" in error.inner_text()
    assert page.locator(".pointer").inner_text().splitlines()[-1].index("^") == 20
    assert page.locator("[data-event-table]").count() == 0  # no misleading empty table


def test_expanding_a_row_shows_the_event_in_place(page: Any, demo: None) -> None:
    log_in(page)
    page.goto("/events/?actions=login_failed")
    first = page.locator(".event-row").first
    first.locator("[data-expand]").click()
    detail = page.locator(".detail-row .event-info").first
    detail.wait_for()
    assert "Attempted to log in as" in detail.inner_text()
    first.locator("[data-expand]").click()
    assert page.locator(".detail-row").count() == 0


def test_details_show_the_old_and_new_email_after_an_api_change(
    page: Any, admin: Any, live_server: Any
) -> None:
    ana = User.objects.create_user("ana", "ana@old.example.com")
    key = create_api_token(user=admin).key
    request = Request(
        f"{live_server.url}/api/v3/core/users/{ana.pk}/",
        data=json.dumps({"email": "ana@new.example.com"}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urlopen(request, timeout=30) as response:
        assert response.status == 200
    log_in(page)
    page.goto(f"/directory/users/{ana.pk}/")
    page.locator(".event-row", has_text="Model Updated").first.locator(
        "a[title='Show details']"
    ).click()
    page.wait_for_selector("[data-changes]")
    changes = page.locator("[data-changes] tr", has_text="email")
    assert '"ana@old.example.com"' in changes.inner_text()
    assert '"ana@new.example.com"' in changes.inner_text()
    assert "admin" in page.locator("[data-event-facts]").inner_text()


def test_the_map_and_chart_show_the_demo_data(page: Any, demo: None) -> None:
    log_in(page)
    page.goto("/events/")
    page.wait_for_selector("[data-event-map][data-ready]")
    page.wait_for_selector("canvas[data-volume-chart][data-ready]")
    assert int(page.get_attribute("[data-event-map]", "data-points")) > 10
    assert page.locator(".map-count").count() > 3
    assert int(page.get_attribute("canvas[data-volume-chart]", "data-bars")) > 10
    datasets = page.evaluate(
        "window.auditlogVolume.data.datasets.map(d => [d.label, d.backgroundColor])"
    )
    assert ["Login", "#4cb140"] in datasets  # the same colour for an action everywhere
    # Clicking a place narrows the search to the events there.
    page.locator(".map-count").first.click()
    page.wait_for_timeout(300)
    if "context.geo.lat" not in page.url:  # a cluster zooms in first; click a single place
        page.locator(".map-count").first.click()
    page.wait_for_url("**search=*context.geo.lat*")
    assert page.locator(".event-row").count() > 0


def test_clearing_notifications_from_the_drawer(page: Any, admin: Any) -> None:
    event = record_event(action="export_done", app="tests", context={"message": "done"})
    first = Notification.objects.create(user=admin, body="First notice", event=event)
    Notification.objects.create(
        user=admin, body="Second notice", hyperlink="/events/", hyperlink_label="Download"
    )
    log_in(page)
    expect(page.locator("[data-unread-count]")).to_have_text("2")
    page.click("[data-drawer-toggle]")
    page.locator("[data-notification]").first.wait_for()
    assert page.locator("a[data-notification-link]", has_text="Download").is_visible()
    page.click(f'[data-mark-read="{first.pk}"]')
    expect(page.locator("[data-notification]")).to_have_count(1)
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    first.refresh_from_db()
    assert first.seen is True
    page.click("[data-clear-all]")
    page.locator("[data-toast]", has_text="Successfully cleared notifications").wait_for()
    assert page.locator("[data-drawer]").is_hidden()
    assert not Notification.objects.filter(user=admin, seen=False).exists()


def test_creating_a_token_shows_its_key_once(page: Any, admin: Any, live_server: Any) -> None:
    log_in(page)
    page.goto("/directory/tokens/")
    page.fill("#id_identifier", "elastic-agent")
    page.click("[data-token-form] button[type=submit]")
    key = page.locator("[data-key-value]").input_value()
    assert key == Token.objects.get(identifier="elastic-agent").key
    request = Request(
        f"{live_server.url}/api/v3/events/events/?page_size=1",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urlopen(request, timeout=30) as response:
        assert response.status == 200
    page.reload()
    assert page.locator("[data-new-key]").count() == 0
    assert key not in page.content()


def test_exporting_the_current_search_and_downloading_it(page: Any, admin: Any) -> None:
    for name in ("ana", "ben", "cara"):
        Event(action=EventAction.LOGIN_FAILED, app="tests", context={"username": name}).save()
    Event(action=EventAction.LOGOUT, app="tests", context={"username": "dan"}).save()
    log_in(page)
    page.goto("/events/?search=" + 'action = "login_failed"' + "&ordering=-created")
    page.select_option("[data-export-format]", "csv")
    page.click("[data-export]")
    page.locator("[data-toast]", has_text="processed in the background").wait_for()
    # The notification arrives in the drawer with its Download link.
    page.reload()
    page.click("[data-drawer-toggle]")
    link = page.locator("a[data-notification-link]", has_text="Download")
    link.wait_for()
    assert (
        "Event export generated successfully" in page.locator("[data-notifications]").inner_text()
    )
    with page.expect_download() as download_info:
        link.click()
    lines = Path(download_info.value.path()).read_text().splitlines()
    assert len(lines) == 1 + 3  # the header and the three failed logins, nothing else
    assert all("login_failed" in line for line in lines[1:])
    # The Data Exports page lists it, finished, with its query.
    page.goto("/exports/")
    row = page.locator(".export-row").first
    assert "Finished" in row.inner_text()
    row.locator("[data-toggle-next]").click()
    assert 'action = "login_failed"' in page.locator(".detail-row:not([hidden])").inner_text()
