"""The API's documentation pages in a real Chromium: they render under the site's
Content-Security-Policy without a single violation, and nothing they load leaves the site."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

# Runs before any page script and outside the page's policy: collects every violation.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def watch(page: Any) -> tuple[list[str], list[str]]:
    """Every URL the page requests, and every console message about the policy."""
    requests: list[str] = []
    messages: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            messages.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return requests, messages


def assert_stayed_home(
    page: Any, live_server: Any, requests: list[str], messages: list[str]
) -> None:
    own = live_server.url + "/"
    assert requests, "no request was seen"
    away = [url for url in requests if not url.startswith((own, "blob:" + own, "data:"))]
    assert not away, f"requests left {live_server.url}: {away}"
    assert page.evaluate("window.__violations") == []
    assert messages == []


def test_swagger_ui_renders_without_a_violation(page: Any, admin: Any, live_server: Any) -> None:
    requests, messages = watch(page)
    log_in(page)
    page.goto("/api/v3/schema/swagger/")
    operation = page.locator(".opblock", has_text="/api/v3/events/events/").first
    operation.wait_for()
    operation.locator(".opblock-summary").click()  # expand one: parameters and responses render
    page.locator(".opblock-body .parameters").first.wait_for()
    page.locator(".try-out__btn").first.click()
    page.locator(".execute").first.click()  # a real call, from the page, to our own API
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert "200" in status.inner_text()
    assert_stayed_home(page, live_server, requests, messages)


def test_redoc_renders_and_searches_without_a_violation(
    page: Any, admin: Any, live_server: Any
) -> None:
    requests, messages = watch(page)
    log_in(page)
    page.goto("/api/v3/schema/redoc/")
    page.locator("h2", has_text="List events").first.wait_for()
    # The search runs in ReDoc's web worker (the page's one allowance, worker-src blob:).
    page.fill("input[placeholder='Search...']", "export")
    page.locator("[data-role='search:results'] li").first.wait_for()
    assert any(url.startswith("blob:") for url in requests)
    assert_stayed_home(page, live_server, requests, messages)
