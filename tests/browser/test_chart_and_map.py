"""The chart and the map in a real browser: the legend lists every type the tooltip can show,
in distinct colours, over the period of the search; the map draws no stripes, fits the results
and keeps land and names on screen when zoomed in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from auditlog.models import Event, EventAction
from auditlog.presentation import action_color, action_label
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

MANY = [
    EventAction.LOGIN,
    EventAction.LOGIN_FAILED,
    EventAction.LOGOUT,
    EventAction.MODEL_CREATED,
    EventAction.MODEL_UPDATED,
    EventAction.MODEL_DELETED,
    EventAction.PASSWORD_SET,
    EventAction.AUTHORIZE_APPLICATION,
    EventAction.SYSTEM_TASK_EXECUTION,
    EventAction.USER_WRITE,
    EventAction.SUSPICIOUS_REQUEST,
    EventAction.SECRET_VIEW,
    EventAction.CONFIGURATION_ERROR,
    EventAction.EMAIL_SENT,
    EventAction.POLICY_EXECUTION,
    EventAction.FLOW_EXECUTION,
]
PLACES = {"Reykjavik": (64.1, -21.9), "Wellington": (-41.3, 174.8), "Tokyo": (35.7, 139.7)}


def event_at(action: str, days_ago: float, place: str | None = None) -> None:
    context: dict[str, Any] = {}
    if place:
        lat, long = PLACES[place]
        context["geo"] = {"lat": lat, "long": long, "city": place}
    event = Event(action=action, app="t", context=context)
    event.created = timezone.now() - timedelta(days=days_ago)
    event._keep_created = True  # type: ignore[attr-defined]
    event.save()


def test_the_legend_lists_every_type_in_distinct_colours_over_the_searched_period(
    page: Any, admin: Any
) -> None:
    for index, action in enumerate(MANY):
        event_at(action, days_ago=index * 3)  # 45 days: longer than the old fixed week
    log_in(page)
    page.goto("/events/")
    page.wait_for_selector("canvas[data-volume-chart][data-ready]")
    legend = page.locator("[data-chart-legend] li").all_inner_texts()
    tooltip_types = page.evaluate("window.auditlogVolume.data.datasets.map(d => d.label)")
    assert sorted(legend) == sorted(tooltip_types) == sorted(action_label(a) for a in MANY)
    assert "System Task Execution" in legend and "User Write" in legend
    colours = page.evaluate("window.auditlogVolume.data.datasets.map(d => d.backgroundColor)")
    assert len(set(colours)) == len(MANY)
    assert colours[tooltip_types.index("Login")] == action_color(EventAction.LOGIN)
    start = page.get_attribute("canvas[data-volume-chart]", "data-start")
    assert start[:10] <= (timezone.now() - timedelta(days=44)).date().isoformat()
    assert "daily bars" in page.locator("[data-chart-period]").inner_text()
    # The chart follows the search: only the searched type, only its period.
    page.goto('/events/?search=action = "user_write"')
    page.wait_for_selector("canvas[data-volume-chart][data-ready]")
    assert page.locator("[data-chart-legend] li").all_inner_texts() == ["User Write"]
    # A click on a legend entry hides that type.
    page.locator("[data-chart-legend] li").first.click()
    assert page.evaluate("window.auditlogVolume.isDatasetVisible(0)") is False


def test_the_map_fits_the_results_without_stripes_and_keeps_detail_when_zoomed(
    page: Any, admin: Any, tmp_path: Path
) -> None:
    for place in PLACES:
        event_at(EventAction.LOGIN, 1, place)
    log_in(page)
    page.goto("/events/")
    page.wait_for_selector("[data-event-map][data-ready][data-detail]")
    page.wait_for_timeout(300)
    box = page.locator("[data-event-map]").bounding_box()
    icons = page.locator("[data-event-map] .map-count")
    assert icons.count() == 3  # far apart: no cluster swallows them
    for index in range(icons.count()):
        icon = icons.nth(index).bounding_box()
        assert box["x"] <= icon["x"] and icon["x"] + icon["width"] <= box["x"] + box["width"]
        assert box["y"] <= icon["y"] and icon["y"] + icon["height"] <= box["y"] + box["height"]
    # No ring of a country jumps across the map (a stripe): Russia, Fiji and Antarctica.
    longest = page.evaluate(
        """() => {
          let longest = 0;
          window.auditlogMap.eachLayer(layer => {
            if (!layer.feature || !layer.getLatLngs) return;
            const walk = rings => rings.forEach(ring => {
              if (ring.length && ring[0].lat !== undefined) {
                for (let i = 1; i < ring.length; i++) {
                  // The edge that closes Antarctica runs along the pole, off the map.
                  if (Math.abs(ring[i].lat) > 85 && Math.abs(ring[i - 1].lat) > 85) continue;
                  longest = Math.max(longest, Math.abs(ring[i].lng - ring[i - 1].lng));
                }
              } else walk(ring);
            });
            walk(layer.getLatLngs());
          });
          return longest;
        }"""
    )
    assert 0 < longest < 180
    page.screenshot(path="/tmp/saved-map.png")
    # Zoomed in on one place: finer borders and country names, not a grey plane.
    page.evaluate("window.auditlogMap.setView([35.7, 139.7], 6)")
    page.wait_for_selector("[data-event-map][data-detail=countriesFine]", timeout=30000)
    assert page.locator(".map-country-name", has_text="Japan").count() >= 1
