"""Every page of the web admin, in the light theme at 1280 px and in the dark theme at 390 px:
axe-core finds no serious or critical violation, and no page is wider than a 390 px (or 360 px)
phone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from auditlog.demo import load_demo_data
from auditlog.models import Event, EventAction
from directory.models import Group, User
from directory.services import create_api_token
from exports.services import request_export
from notifications.models import Notification, NotificationRule, NotificationTransport
from project.browser import VIEWPORT
from sources.models import AuthentikSource
from streams.models import Destination
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => `${v.id} (${v.impact}): ${v.help} at `
            + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
}"""


@pytest.fixture
def site(admin: Any) -> list[str]:
    """Some data on every page; return the paths of every page of the web admin."""
    if not AXE.is_file():
        if os.environ.get("REQUIRE_BROWSER"):  # CI: the accessibility check may not vanish
            pytest.fail("axe-core is required here (REQUIRE_BROWSER) but not installed")
        pytest.skip("axe-core is not installed (make assets)")
    load_demo_data(events=120, seed=3)
    transport = NotificationTransport.objects.create(
        name="Chat", mode="webhook", webhook_url="https://hooks.example.com/x"
    )
    rule = NotificationRule.objects.create(name="Failed logins", match='action = "login_failed"')
    rule.transports.add(transport)
    create_api_token(user=admin, identifier="agent")
    request_export(user=admin, model=Event, query_params={}, export_format="csv")
    Notification.objects.create(user=admin, body="Something happened", hyperlink="/events/")
    source = AuthentikSource.objects.create(name="Upstream", url="https://authentik.example.com")
    stream = Destination.objects.create(
        name="splunk",
        transport="http",
        url="https://splunk.example.com:8088/services/collector",
        last_error="HTTP 503 Service Unavailable: the index is read-only",
    )
    event = Event.objects.filter(action=EventAction.LOGIN).first()
    user = User.objects.exclude(username="admin").first()
    group = Group.objects.first()
    assert event and user and group
    return [
        "/",
        "/events/",
        f"/events/{event.pk}/",
        "/events/search-help/",
        "/events/rules/",
        "/events/rules/new/",
        f"/events/rules/{rule.pk}/",
        "/events/transports/",
        "/events/transports/new/",
        f"/events/transports/{transport.pk}/",
        "/exports/",
        "/directory/users/",
        f"/directory/users/{user.pk}/",
        "/directory/groups/",
        f"/directory/groups/{group.pk}/",
        "/directory/tokens/",
        "/system/brands/",
        "/system/brands/new/",
        "/system/settings/",
        "/system/sources/",
        f"/system/sources/{source.pk}/",
        "/system/streams/",
        "/system/streams/new/",
        f"/system/streams/{stream.pk}/",
        "/no-such-page/",
    ]


def wait_until_drawn(page: Any) -> None:
    """Charts and maps draw after the page loads; their colours count too."""
    for selector in ("[data-volume-chart]", "[data-event-map]"):
        if page.locator(selector).count():
            page.wait_for_selector(selector + "[data-ready]")


def overflow(page: Any, path: str) -> list[str]:
    """The page fits a 390 px phone and the narrowest one, 360 px, without scrolling sideways."""
    problems = []
    for width in (PHONE["width"], 360):
        page.set_viewport_size({"width": width, "height": PHONE["height"]})
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > width:
            problems.append(f"{path}: the page is {wide} px wide at {width} px")
    page.set_viewport_size(PHONE)
    return problems


def check_pages(page: Any, paths: list[str], *, phone: bool) -> list[str]:
    problems: list[str] = []
    for path in paths:
        page.goto(path)
        wait_until_drawn(page)
        page.evaluate(AXE.read_text())
        problems += [f"{path}: {violation}" for violation in page.evaluate(RUN_AXE)]
        if phone:
            problems += overflow(page, path)
    return problems


def test_every_page_passes_axe_in_light_and_dark_and_fits_a_phone(
    browser: Any, live_server: Any, site: list[str]
) -> None:
    problems: list[str] = []
    for label, options in [
        ("light 1280 px", {"color_scheme": "light", "viewport": VIEWPORT}),
        ("dark 390 px", {"color_scheme": "dark", "viewport": PHONE}),
    ]:
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(15000)
        page = context.new_page()
        page.goto("/login/")
        page.evaluate(AXE.read_text())
        problems += [f"{label} /login/: {v}" for v in page.evaluate(RUN_AXE)]
        if options["viewport"] == PHONE:
            problems += overflow(page, "/login/")
        log_in(page)
        if options["color_scheme"] == "dark":  # the system's theme is followed
            assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        # Every page the navigation links to counts too, including pages added later.
        linked = page.eval_on_selector_all("#sidebar a", "links => links.map(a => a.pathname)")
        paths = list(dict.fromkeys([*site, *linked]))
        problems += [
            f"{label} {problem}"
            for problem in check_pages(page, paths, phone=options["viewport"] == PHONE)
        ]
        context.close()
    assert problems == [], "\n".join(problems)
