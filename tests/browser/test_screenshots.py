"""``manage.py screenshots`` saves a page only once everything its scripts draw is drawn."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.management.base import CommandError

from auditlog.demo import load_demo_data
from auditlog.management.commands.screenshots import wait_until_drawn
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(admin: Any) -> None:
    load_demo_data(events=300, seed=7)


def slow_volume(page: Any, seconds: float) -> None:
    """Answer the volume chart's request late, as on a busy server (the map answers first)."""

    def delay(route: Any) -> None:
        time.sleep(seconds)
        route.continue_()

    page.route("**/events/chart/**", delay)


def test_the_overview_is_taken_once_chart_and_map_are_drawn(page: Any, demo: None) -> None:
    log_in(page)
    slow_volume(page, 2.0)
    page.goto("/")
    wait_until_drawn(page)
    chart = page.locator("[data-volume-chart]")
    assert chart.get_attribute("data-ready") == "true"
    assert int(chart.get_attribute("data-bars") or 0) > 0
    assert page.locator("[data-event-map]").get_attribute("data-ready") == "true"


def test_a_chart_that_cannot_be_drawn_stops_the_screenshot(page: Any, demo: None) -> None:
    log_in(page)
    page.route("**/events/chart/**", lambda route: route.fulfill(status=500, body="{}"))
    page.goto("/events/")
    with pytest.raises(CommandError, match="could not draw"):
        wait_until_drawn(page, timeout=5000)
