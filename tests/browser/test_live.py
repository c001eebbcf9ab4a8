"""The event log's Live switch and the live bell, in a real browser against a live server:
events posted through the API appear without a reload, only when they match the page's
search; paused, they are counted; the bell counts a new notification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from auditlog.live.hub import HUB
from directory.services import create_api_token
from notifications.models import Notification
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _hub_stops(settings: Any) -> Iterator[None]:
    settings.LIVE_HEARTBEAT = timedelta(seconds=1)
    yield
    HUB.stop()


def test_live_events_appear_without_reload_only_when_they_match(
    page: Any, admin: Any, live_server: Any
) -> None:
    token = create_api_token(user=admin).key

    def post(action: str) -> str:
        response = requests.post(
            f"{live_server.url}/api/v3/events/events/",
            json={"action": action, "app": "browser", "context": {"username": "ana"}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["pk"])

    log_in(page)
    search = 'app = "browser" and action = "custom_wanted"'
    page.goto(f"/events/?search={quote(search)}")
    page.evaluate("window.notReloaded = true")
    page.check("[data-live-toggle]")
    page.wait_for_selector("[data-live-status].on")

    unwanted = post("custom_unwanted")
    wanted = post("custom_wanted")
    page.wait_for_selector(f'tr[data-event="{wanted}"]', timeout=5000)
    row = page.locator(f'tr[data-event="{wanted}"]')
    assert "custom_wanted" in row.inner_text() or "Wanted" in row.inner_text()
    assert page.locator(f'tr[data-event="{unwanted}"]').count() == 0
    assert page.locator("tbody tr").first.get_attribute("data-event") == wanted  # at the top
    assert page.evaluate("window.notReloaded") is True
    # The chart and the map follow (refreshed, throttled).
    page.wait_for_selector("canvas[data-volume-chart][data-refreshed]")
    page.wait_for_selector("[data-event-map][data-refreshed]")

    page.click("[data-live-pause]")
    held = [post("custom_wanted"), post("custom_wanted")]
    page.wait_for_selector('[data-live-count="2"]')
    assert page.locator("[data-live-status]").inner_text().startswith("2 new")
    assert page.locator(f'tr[data-event="{held[0]}"]').count() == 0
    page.click("[data-live-pause]")  # Resume
    assert page.locator("tbody tr").first.get_attribute("data-event") == held[1]
    assert page.locator(f'tr[data-event="{held[0]}"]').count() == 1
    assert page.evaluate("window.notReloaded") is True


def test_the_bell_counts_a_new_notification_without_reload(
    page: Any, admin: Any, live_server: Any
) -> None:
    log_in(page)
    page.goto("/events/")
    badge = page.locator(".bell [data-unread-count]")
    assert badge.is_hidden()
    Notification.objects.create(user=admin, body="Your export is ready", severity="notice")
    page.wait_for_selector(".bell [data-unread-count]:not(.hidden)", timeout=10000)
    assert badge.inner_text() == "1"
    page.click("[data-drawer-toggle]")
    page.wait_for_selector("text=Your export is ready")
