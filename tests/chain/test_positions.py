"""Positions: events after a place in the chain, in chain order, through any filter."""

from __future__ import annotations

import pytest

from auditlog import chain
from auditlog.models import Event, EventChainLink
from auditlog.positions import PositionError, events_after, head_position, parse_position
from auditlog.services import record_event

pytestmark = pytest.mark.django_db


def _write(action: str, n: int) -> None:
    for i in range(n):
        record_event(action=action, app="tests", context={"i": i})
    chain.seal_pending()


def test_every_event_after_a_position_comes_once_in_chain_order() -> None:
    start = head_position()
    _write("login", 7)
    seen: list[int] = []
    position = start
    while True:
        page = events_after(Event.objects.all(), position, 3)
        if not page.items:
            break
        seen += [item.sequence for item in page.items]
        position = page.next_position
    expected = list(
        EventChainLink.objects.filter(sequence__gt=start)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert seen == expected and len(seen) >= 7
    assert position == head_position()


def test_a_filter_skips_other_events_but_the_position_moves_past_them() -> None:
    start = head_position()
    _write("login", 3)
    _write("logout", 4)
    page = events_after(Event.objects.filter(action="logout"), start, 100, scan_limit=100)
    assert [item.event.action for item in page.items] == ["logout"] * 4
    assert page.next_position == head_position()
    links = {item.sequence: item.chain_hash for item in page.items}
    stored = dict(
        EventChainLink.objects.filter(sequence__in=links).values_list("sequence", "chain_hash")
    )
    assert links == stored
    # Nothing after the head.
    assert events_after(Event.objects.all(), head_position(), 10).items == []


@pytest.mark.parametrize("raw", ["", "-1", "1.5", "abc", "١٢"])
def test_a_position_must_be_a_whole_number(raw: str) -> None:
    with pytest.raises(PositionError, match="non-negative whole number"):
        parse_position(raw)
    assert parse_position(" 42 ") == 42
