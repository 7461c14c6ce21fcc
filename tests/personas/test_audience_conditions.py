"""The audience condition language, pure: what parses (normalized, defaults filled), what is refused with
the field that names the spot, the English a condition reads as, and the trait leaf matching exactly as
an experiment's audience rule does."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.service import matches, parse_audience
from shopkeeper.personas.conditions import (
    MAX_LEAVES,
    describe,
    leaf_kinds,
    parse_condition,
    trait_matches,
)

VIEWS = {"event": "Product Viewed", "at_least": 3, "within_days": 14}


def test_a_condition_is_normalized_with_its_defaults_and_the_input_is_left_alone() -> None:
    raw = {
        "all": [
            {"within_days": 14, "event": "Product Viewed", "at_least": 3},
            {"purchased": "Party", "within_days": 90},
            {"not": {"consent": "email_marketing"}},
            {"any": [{"wish": True}, {"moment": "back_in_stock"}, {"persona": "p1"}]},
        ]
    }
    before = copy.deepcopy(raw)
    parsed = parse_condition(raw)
    assert raw == before
    assert parsed == {
        "all": [
            {"event": "Product Viewed", "at_least": 3, "within_days": 14},
            {"purchased": "Party", "within_days": 90, "at_least": 1},
            {"not": {"consent": "email_marketing", "granted": True}},
            {
                "any": [
                    {"wish": True, "status": "open"},
                    {"moment": "back_in_stock", "status": "sent"},
                    {"persona": "p1"},
                ]
            },
        ]
    }
    assert list(parsed["all"][0]) == ["event", "at_least", "within_days"]  # the kind key first
    assert parse_condition(parsed) == parsed  # parsing is idempotent
    assert leaf_kinds(parsed) == {"event", "purchased", "consent", "wish", "moment", "persona"}


@pytest.mark.parametrize(
    "rule",
    [
        {"trait": "favourite_categories", "contains": "Party"},
        {"trait": "country", "equals": "GB"},
        {"trait": "order_count", "gte": 2},
        {"trait": "order_count", "gte": 2, "lte": 5.5},
        {"trait": "revenue", "lte": 100},
    ],
)
def test_every_experiment_audience_rule_is_a_trait_leaf_unchanged(rule: dict[str, Any]) -> None:
    assert parse_condition(rule) == parse_audience(rule) == rule


VALUES: list[Any] = [
    None, "Party", "Party > Balloons", "Kitchen > Party", "party", ["Party > Cakes", "Toys"], ["Toys"],
    3, 3.0, 2, 7, True, False, "3", [], {"a": 1},
]  # fmt: skip
RULES: list[dict[str, Any]] = [
    {"trait": "t", "contains": "Party"},
    {"trait": "t", "contains": "Balloons"},
    {"trait": "t", "contains": 3},
    {"trait": "t", "equals": "Party"},
    {"trait": "t", "equals": 3},
    {"trait": "t", "equals": True},
    {"trait": "t", "gte": 3},
    {"trait": "t", "lte": 3},
    {"trait": "t", "gte": 2, "lte": 3},
]


@pytest.mark.parametrize("rule", RULES)
def test_a_trait_leaf_matches_exactly_as_an_experiment_audience_does(rule: dict[str, Any]) -> None:
    leaf = parse_condition(rule)
    assert [trait_matches(leaf, v) for v in VALUES] == [matches(rule, v) for v in VALUES]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (
            {"all": [VIEWS, {"purchased": "Party", "within_days": 90}]},
            "did Product Viewed at least 3 times in the last 14 days, and bought Party in the last 90 days",
        ),
        ({"event": "Signed Up"}, "did Signed Up"),
        ({"event": "Login", "at_most": 2, "within_days": 1}, "did Login at most twice in the last day"),
        ({"event": "Login", "at_least": 2, "at_most": 2}, "did Login exactly twice"),
        ({"event": "Login", "at_least": 2, "at_most": 5}, "did Login 2 to 5 times"),
        ({"purchased": True}, "bought anything"),
        (
            {"purchased": "Party", "item": "cake", "at_least": 2, "spend_gte": 50, "spend_lte": 99.5},
            "bought item cake in Party in at least 2 orders for 50 to 99.5 in all",
        ),
        ({"trait": "country", "equals": "GB"}, "have country GB"),
        ({"trait": "sizes", "contains": "M", "source": "stated"}, "have stated sizes including M"),
        ({"trait": "order_count", "gte": 2}, "have order_count of at least 2"),
        ({"persona": "p1"}, "are in persona p1"),
        ({"consent": "email_marketing", "granted": False}, "have not granted email_marketing"),
        ({"wish": "cake", "status": "expired"}, "have an expired wish for cake"),
        ({"moment": True, "within_days": 7}, "were sent a moment in the last 7 days"),
        ({"moment": "welcome", "status": "suppressed"}, "have the moment welcome suppressed"),
        (
            {"any": [{"persona": "p1"}, {"not": {"all": [{"wish": True}, {"purchased": True}]}}]},
            "are in persona p1, or are not among those who (have an open wish, and bought anything)",
        ),
    ],
)
def test_describe_reads_as_one_sentence(raw: dict[str, Any], text: str) -> None:
    assert describe(parse_condition(raw)) == text


def _nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"persona": "p1"}
    for _ in range(depth - 1):
        condition = {"not": condition}
    return condition


BAD: list[tuple[Any, str, str]] = [
    ([], "where", "expected a condition"),
    ({}, "where", "an empty object"),
    ({"foo": 1}, "where.foo", "unknown key; a condition has one of the keys all, any, not, trait"),
    ({"all": []}, "where.all", "non-empty list"),
    ({"any": {"persona": "p"}}, "where.any", "non-empty list"),
    ({"all": [VIEWS], "any": [VIEWS]}, "where.any", "one kind"),
    ({"not": VIEWS, "x": 1}, "where.x", "one key 'not'"),
    ({"persona": "p", "event": "e"}, "where.event", "one kind"),
    ({"all": [VIEWS, {"event": "e", "at_least": True}]}, "where.all[1].at_least", "whole number"),
    ({"event": "e", "at_least": 0}, "where.at_least", "whole number of at least 1"),
    ({"event": "e", "at_least": 2.5}, "where.at_least", "whole number"),
    ({"event": "e", "at_least": 3, "at_most": 2}, "where.at_most", "at least at_least (3)"),
    ({"event": "e", "within_days": -1}, "where.within_days", "above 0"),
    ({"event": "e", "within_days": math.nan}, "where.within_days", "a number"),
    ({"event": "e", "within_days": math.inf}, "where.within_days", "a number"),
    ({"event": "e", "within_days": "14"}, "where.within_days", "a number"),
    ({"event": ""}, "where.event", "non-empty string"),
    ({"event": "x" * 256}, "where.event", "at most 255"),
    ({"event": 3}, "where.event", "an event name"),
    ({"event": "e", "count": 3}, "where.count", "known keys: event, at_least, at_most, within_days"),
    ({"purchased": False}, "where.purchased", "true or a category"),
    ({"purchased": True, "spend_gte": -1}, "where.spend_gte", "at least 0"),
    ({"purchased": True, "spend_gte": True}, "where.spend_gte", "a number"),
    ({"purchased": True, "spend_gte": 9, "spend_lte": 5}, "where.spend_lte", "at least spend_gte"),
    ({"purchased": True, "item": ""}, "where.item", "an item id"),
    ({"trait": "t"}, "where", "one test"),
    ({"trait": "t", "equals": 1, "contains": 1}, "where.contains", "one test"),
    ({"trait": "t", "gte": "3"}, "where.gte", "a number"),
    ({"trait": "t", "lte": math.nan}, "where.lte", "a number"),
    ({"trait": "t", "equals": [1]}, "where.equals", "a string"),
    ({"trait": "t", "equals": "x", "source": "guessed"}, "where.source", "stated, observed, inferred"),
    ({"consent": "email", "granted": "yes"}, "where.granted", "true or false"),
    ({"wish": True, "status": "closed"}, "where.status", "open, notified, dropped, expired, fulfilled"),
    ({"moment": True, "status": "done"}, "where.status", "pending, held, sending, sent"),
    ({"moment": 1}, "where.moment", "true or a moment rule's name"),
    (_nested(7), "where.not.not.not.not.not.not", "at most 6 levels"),
    ({"any": [{"persona": str(i)} for i in range(MAX_LEAVES + 1)]}, f"where.any[{MAX_LEAVES}]", "32 leaves"),
]


@pytest.mark.parametrize(("raw", "field", "words"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_every_mistake_is_refused_naming_its_field(raw: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_condition(raw)
    assert raised.value.field == field
    assert words in raised.value.message


def test_the_root_of_the_path_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_condition({"any": [{"persona": 1}]}, field="audience.condition")
    assert raised.value.field == "audience.condition.any[0].persona"
    assert "keys of a persona condition: persona" in raised.value.message


def test_the_limits_themselves_are_allowed() -> None:
    assert parse_condition(_nested(6))
    assert parse_condition({"any": [{"persona": str(i)} for i in range(MAX_LEAVES)]})
    assert parse_condition({"event": "x" * 255, "within_days": 0.5})
