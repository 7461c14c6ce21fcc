"""The builder's form to and from the condition language: rows say a condition exactly or not at all."""

from __future__ import annotations

from typing import Any

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.conditions import parse_condition
from shopkeeper.web.audience_form import (
    Draft,
    Row,
    condition_of,
    draft_from_condition,
    draft_from_form,
    preview_of,
)

AS_ROWS: list[dict[str, Any]] = [
    {"persona": "p1"},
    {"not": {"persona": "p5"}},
    {"trait": "country", "equals": "GB", "source": "stated"},
    {"trait": "order_count", "gte": 2, "lte": 4},
    {"trait": "vip", "equals": True},
    {
        "any": [
            {"event": "Product Viewed", "at_least": 3, "within_days": 14.5},
            {"consent": "sms", "granted": False},
        ]
    },
    {
        "all": [
            {"purchased": True, "spend_gte": 20},
            {"wish": True},
            {"moment": "price_drop", "status": "held"},
        ]
    },
]
AS_JSON: list[dict[str, Any]] = [
    {"trait": "postcode", "equals": "3"},  # a string that rows would read as a number
    {"all": [{"any": [{"persona": "p1"}, {"persona": "p2"}]}, {"persona": "p3"}]},  # a group in a group
    {"not": {"all": [{"persona": "p1"}, {"persona": "p2"}]}},
    {"trait": "nickname", "equals": ""},
    {"any": [{"persona": f"p{i}"} for i in range(13)]},  # more rows than the builder has
]


@pytest.mark.parametrize("raw", AS_ROWS)
def test_a_condition_rows_can_say_comes_back_the_same_from_the_posted_form(raw: dict[str, Any]) -> None:
    condition = parse_condition(raw)
    draft = draft_from_condition(condition, name="x")
    assert draft.editor == "rows"
    posted = {"join": draft.join, "editor": "rows"}
    for i, row in enumerate(draft.rows):
        posted |= {f"r{i}-kind": row.kind, **{f"r{i}-{k}": v for k, v in row.values.items()}}
        if row.negate:
            posted[f"r{i}-not"] = "1"
    assert condition_of(draft_from_form(posted)) == condition


@pytest.mark.parametrize("raw", AS_JSON)
def test_a_condition_rows_cannot_say_opens_as_json(raw: dict[str, Any]) -> None:
    condition = parse_condition(raw)
    draft = draft_from_condition(condition)
    assert draft.editor == "json" and draft.rows == []
    assert condition_of(draft) == condition


def test_a_row_still_empty_is_left_out_of_the_preview_but_refused_on_saving() -> None:
    draft = Draft(rows=[Row("persona", values={"persona-id": "p1"}), Row("event", values={"event-name": ""})])
    assert preview_of(draft) == ({"persona": "p1"}, [(1, "give the event's name")])
    with pytest.raises(InvalidInput, match=r"Condition 2 \(event\): give the event's name"):
        condition_of(draft)


def test_numbers_are_read_only_when_plainly_numbers() -> None:
    for text, message in (
        ("1e3", "expected a whole number"),
        ("3,5", "expected a whole number"),
        ("9" * 40, ""),
    ):
        row = Row("event", values={"event-name": "Order Completed", "event-at_least": text})
        with pytest.raises(InvalidInput, match=r"Condition 1 \(event\): where.at_least: " + message):
            condition_of(Draft(rows=[row]))
    nan = Row("purchased", values={"purchased-spend_gte": "nan"})
    with pytest.raises(InvalidInput, match=r"where\.spend_gte: expected a number"):
        condition_of(Draft(rows=[nan]))
