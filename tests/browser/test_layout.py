"""The frame in a real browser: the phone-width navigation and the keyboard, the dark theme and
its switch, the form fixes, the copy-key action and the sidebar of long pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from auditlog.demo import load_demo_data
from directory.models import Brand, Token
from directory.services import create_api_token
from notifications.models import Notification, NotificationTransport
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, base_url=live_server.url)
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


def focused(page: Any, selector: str) -> bool:
    return bool(page.evaluate("(s) => document.activeElement.matches(s)", selector))


def test_the_navigation_folds_behind_a_menu_button_used_with_the_keyboard(
    phone: Any, admin: Any
) -> None:
    page = phone
    log_in(page)
    page.goto("/system/settings/")
    menu = page.locator("[data-nav-toggle]")
    expect(page.locator("#sidebar")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.keyboard.press("Tab")
    assert focused(page, ".skip-link")
    expect(page.locator(".skip-link")).to_be_in_viewport()
    page.keyboard.press("Tab")  # the folded navigation's links are not in the tab order
    assert focused(page, "[data-nav-toggle]")
    expect(menu).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#sidebar")).to_be_visible()
    assert focused(page, "#sidebar .sidebar-brand")  # the focus moves into the navigation
    page.keyboard.press("Escape")
    expect(page.locator("#sidebar")).to_be_hidden()
    assert focused(page, "[data-nav-toggle]")  # and comes back to the button
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # Overview
    page.keyboard.press("Tab")  # Logs
    assert page.evaluate("document.activeElement.textContent") == "Logs"
    page.keyboard.press("Enter")
    page.wait_for_url("**/events/")
    expect(menu).to_have_attribute("aria-expanded", "false")
    # The search box takes the whole width of the phone.
    width = page.locator("textarea[data-djangoql]").bounding_box()["width"]
    assert width > PHONE["width"] * 0.8


def test_the_skip_link_leads_to_the_content(page: Any, admin: Any) -> None:
    log_in(page)
    page.goto("/directory/users/")
    expect(page.locator("[data-nav-toggle]")).to_be_hidden()  # wide screens keep the sidebar
    expect(page.locator("#sidebar")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert focused(page, "#content")
    page.keyboard.press("Tab")  # the next stop is inside the content, not the navigation
    assert page.evaluate("document.getElementById('content').contains(document.activeElement)")
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert ring == "solid"  # a visible focus ring


def test_the_dark_theme_follows_the_system_and_the_switch_is_remembered(
    browser: Any, live_server: Any, admin: Any
) -> None:
    load_demo_data(events=40, seed=2)
    context = browser.new_context(color_scheme="dark", base_url=live_server.url)
    context.set_default_timeout(15000)
    page = context.new_page()
    log_in(page)
    page.goto("/events/")
    page.wait_for_selector("canvas[data-volume-chart][data-ready]")
    page.wait_for_selector("[data-event-map][data-ready]")

    def colours() -> list[str]:
        return page.evaluate(
            """() => [document.documentElement.dataset.theme,
                getComputedStyle(document.body).backgroundColor,
                getComputedStyle(document.querySelector('.card')).color]"""
        )

    assert colours() == ["dark", "rgb(21, 23, 25)", "rgb(230, 230, 230)"]
    assert page.evaluate("Chart.defaults.color") == "#d2d2d2"  # the chart's text is light
    sea = page.evaluate("getComputedStyle(document.querySelector('.map')).backgroundColor")
    assert sea == "rgb(29, 42, 54)"
    page.select_option("[data-theme-switch]", "light")
    assert colours() == ["light", "rgb(240, 240, 240)", "rgb(21, 21, 21)"]
    page.goto("/directory/users/")
    assert colours()[0] == "light"  # remembered, against the system's dark
    assert page.locator("[data-theme-switch]").input_value() == "light"
    page.select_option("[data-theme-switch]", "system")
    assert colours()[0] == "dark"
    page.emulate_media(color_scheme="light")  # the system changes while the page is open
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.reload()
    assert page.evaluate("localStorage.getItem('auditlog-theme')") is None
    context.close()


def test_the_sidebar_reaches_the_bottom_of_a_long_page(page: Any, admin: Any) -> None:
    load_demo_data(events=120, seed=4)
    log_in(page)
    page.goto("/events/?page_size=100")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 3 * 800
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert page.evaluate("window.scrollY") > 0
    box = page.locator("#sidebar").bounding_box()
    assert box["y"] <= 0 and box["y"] + box["height"] >= 800
    assert page.evaluate(
        "document.elementFromPoint(10, innerHeight - 3).closest('#sidebar') !== null"
    )
    # The whole page's left column is the navigation's colour (as in a full-page capture).
    shell = page.evaluate("getComputedStyle(document.querySelector('.shell')).backgroundImage")
    assert "240px" in shell


def test_the_rule_match_field_is_a_real_multi_line_field(page: Any, admin: Any) -> None:
    log_in(page)
    page.goto("/events/rules/new/")
    match = page.locator("#id_match")
    assert match.bounding_box()["height"] >= 60
    match.click()
    query = 'action = "login_failed" and context.geo.country in ("DE", "FR", "ES", "IT", "PL")'
    page.keyboard.type(query + ' or client_ip ~ "10."')
    page.keyboard.press("Escape")
    assert match.input_value().startswith(query)
    assert page.evaluate("(e) => e.scrollHeight <= e.clientHeight + 1", match.element_handle())


def test_the_transport_form_shows_only_the_chosen_modes_fields(
    page: Any, admin: Any, browser: Any, live_server: Any
) -> None:
    Brand.objects.update_or_create(default=True, defaults={"name": "Acme"})
    log_in(page)
    page.goto("/events/transports/new/")
    webhook, email = page.locator("#id_webhook_url"), page.locator("#id_email_subject_prefix")
    expect(webhook).to_be_hidden()  # the drawer needs neither
    expect(email).to_be_hidden()
    page.select_option("#id_mode", "webhook_slack")
    expect(webhook).to_be_visible()
    expect(page.locator("#id_webhook_body_template")).to_be_visible()
    expect(email).to_be_hidden()
    webhook.fill("not a url")  # left behind when the mode changes again
    page.select_option("#id_mode", "email")
    expect(webhook).to_be_hidden()
    expect(email).to_be_visible()
    assert email.input_value() == "Acme Notification: "
    page.fill("#id_name", "mail")
    page.click("[data-transport-form] button[type=submit]")
    page.wait_for_url("**/events/transports/")
    mail = NotificationTransport.objects.get(name="mail")
    assert (mail.mode, mail.webhook_url, mail.email_subject_prefix) == (
        "email",
        "",
        "Acme Notification: ",
    )
    # Without script every field shows, and the server still ignores the other modes'.
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    plain = context.new_page()
    log_in(plain)
    plain.goto("/events/transports/new/")
    expect(plain.locator("#id_webhook_url")).to_be_visible()
    expect(plain.locator("#id_email_subject_prefix")).to_be_visible()
    plain.fill("#id_name", "plain")
    plain.select_option("#id_mode", "local")
    plain.fill("#id_webhook_url", "ftp://ignored")
    plain.click("[data-transport-form] button[type=submit]")
    plain.wait_for_url("**/events/transports/")
    assert NotificationTransport.objects.get(name="plain").webhook_url == ""
    context.close()


def test_copying_a_tokens_key(browser: Any, live_server: Any, admin: Any) -> None:
    token = create_api_token(user=admin, identifier="siem-agent")
    context = browser.new_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page)
    page.goto("/directory/tokens/")
    table = page.locator(".card", has=page.locator("table")).first.bounding_box()
    assert table["width"] > 900  # the whole width, not half of it
    page.locator("[data-copy-key]", has_text="siem-agent").click()
    status = page.locator("[data-copy-status]")
    expect(status).to_have_text("Copied the key of siem-agent to the clipboard.")
    assert status.get_attribute("role") == "status"
    assert page.evaluate("navigator.clipboard.readText()") == token.key
    assert token.key not in page.content()  # fetched on demand, never in the page
    assert Token.objects.filter(identifier="siem-agent").exists()
    context.close()


def test_the_notification_drawer_is_used_with_the_keyboard(page: Any, admin: Any) -> None:
    Notification.objects.create(user=admin, body="Keyboard notice", hyperlink="/events/")
    log_in(page)
    page.goto("/system/settings/")
    bell = page.locator("[data-drawer-toggle]")
    bell.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-drawer]")).to_be_visible()
    expect(bell).to_have_attribute("aria-expanded", "true")
    expect(page.locator("[data-drawer] :focus")).to_have_count(1)  # the focus moved in
    assert page.evaluate("document.activeElement.textContent") == "Clear all"
    page.keyboard.press("Tab")  # Close
    page.keyboard.press("Tab")  # into the first notification
    assert page.evaluate("document.activeElement.closest('[data-notification]') !== null")
    assert "Keyboard notice" in page.locator("[data-notifications]").inner_text()
    page.keyboard.press("Escape")
    expect(page.locator("[data-drawer]")).to_be_hidden()
    expect(bell).to_have_attribute("aria-expanded", "false")
    assert focused(page, "[data-drawer-toggle]")


def test_without_script_the_narrow_navigation_stays_above_the_page(
    browser: Any, live_server: Any, admin: Any
) -> None:
    context = browser.new_context(
        viewport=PHONE, java_script_enabled=False, base_url=live_server.url
    )
    page = context.new_page()
    log_in(page)
    page.goto("/directory/users/")
    expect(page.locator("[data-nav-toggle]")).to_be_hidden()  # it would do nothing
    expect(page.locator("#sidebar a[href='/events/']")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()
