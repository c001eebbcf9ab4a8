"""The Changes table: what changed inside a value is highlighted, a no-op is neither recorded
nor shown, and membership changes read by name."""

from __future__ import annotations

import pytest

from auditlog.capture import build_diff
from auditlog.presentation import Part, diff_rows, highlight


def changed(parts: tuple[Part, ...]) -> list[str]:
    return [part.text for part in parts if part.changed]


def test_a_string_change_highlights_the_words_that_changed() -> None:
    old, new = highlight('"Ana Lima, Sales"', '"Ana Lima, Support"', by_line=False)
    assert changed(old) == ["Sales"] and changed(new) == ["Support"]
    assert "".join(part.text for part in new) == '"Ana Lima, Support"'


def test_a_dict_change_highlights_only_the_keys_that_changed() -> None:
    (row,) = diff_rows(
        {
            "diff": {
                "attributes": {
                    "previous_value": {"department": "Sales", "floor": 3},
                    "new_value": {"department": "Support", "floor": 3, "desk": "A1"},
                }
            }
        }
    )
    assert changed(row.previous_parts) == ['  "department": "Sales",\n']
    assert changed(row.new_parts) == ['  "department": "Support",\n  "desk": "A1",\n']


def test_a_no_op_change_is_not_shown_and_not_recorded() -> None:
    rows = diff_rows(
        {
            "diff": {
                "department": {"previous_value": "Sales", "new_value": "Sales"},
                "name": {"previous_value": "Ana", "new_value": "Ana L."},
            }
        }
    )
    assert [row.key for row in rows] == ["name"]
    assert build_diff({"department": "Sales"}, {"department": "Sales"}) == {}


def test_membership_reads_by_name_and_old_events_by_id() -> None:
    (row,) = diff_rows({"diff": {"users": {"add": [4], "remove": [5], "names": {"4": "ana"}}}})
    assert row.changes == ("Added ana (ID 4)", "Removed ID 5")


@pytest.mark.parametrize("value", [1, True, None])
def test_values_of_other_json_types_are_changes(value: object) -> None:
    assert build_diff({"x": "1"}, {"x": value})
