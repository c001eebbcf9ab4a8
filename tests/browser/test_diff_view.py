"""The Changes table in a real browser: highlights inside values, no-op rows hidden, and
membership changes read by name on both sides, even after the user was deleted."""

from __future__ import annotations

from typing import Any

import pytest

from auditlog.models import Event, EventAction
from directory.models import Group, User
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def model_events(obj: Any, pk: Any) -> list[Event]:
    return list(
        Event.objects.filter(action=EventAction.MODEL_UPDATED, context__model__pk=pk).order_by(
            "created"
        )
    )


def test_changes_are_highlighted_and_no_op_rows_hidden(page: Any, admin: Any) -> None:
    ana = User.objects.create_user("ana", "ana@old.example.com", name="Ana Lima")
    ana.name = "Ana Silva"
    ana.attributes = {"department": "Support", "floor": 3}
    ana.save()
    update = model_events(ana, ana.pk)[-1]
    model = {"pk": ana.pk, "app": "directory", "model_name": "user", "name": "ana"}
    # An older event that recorded a no-op beside a real change.
    old = Event(
        action=EventAction.MODEL_UPDATED,
        app="t",
        context={
            "model": model,
            "diff": {
                "department": {"previous_value": "Sales", "new_value": "Sales"},
                "email": {"previous_value": "a@old.example.com", "new_value": "a@new.example.com"},
            },
        },
    )
    old.save()
    log_in(page)
    page.goto(f"/events/{update.pk}/")
    name_row = page.locator("[data-changes] tr", has_text="Ana Silva")
    assert name_row.locator("del.diff-removed").all_inner_texts() == ["Lima"]
    assert name_row.locator("ins.diff-added").all_inner_texts() == ["Silva"]
    attributes = page.locator("[data-changes] tr", has_text="attributes")
    assert '"department": "Support"' in attributes.locator("ins.diff-added").inner_text()
    page.goto(f"/events/{old.pk}/")
    keys = page.locator("[data-changes] tbody td:first-child").all_inner_texts()
    assert keys == ["email"]  # Sales -> Sales is not shown
    assert page.locator("[data-changes] ins").all_inner_texts() == ["new"]


def test_membership_reads_by_name_on_both_sides_after_the_user_is_deleted(
    page: Any, admin: Any
) -> None:
    group = Group.objects.create(name="Sales Team")
    ana = User.objects.create_user("ana")
    ana_pk = ana.pk
    group.users.add(ana)
    group_event = model_events(group, group.pk.hex)[-1]
    user_event = model_events(ana, ana_pk)[-1]
    ana.delete()
    log_in(page)
    page.goto(f"/events/{group_event.pk}/")
    assert page.locator("ul.changes li").all_inner_texts() == [f"Added ana (ID {ana_pk})"]
    page.goto(f"/events/{user_event.pk}/")
    assert page.locator("ul.changes li").all_inner_texts() == [
        f"Added Sales Team (ID {group.pk.hex})"
    ]
