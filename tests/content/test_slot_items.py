"""The slot check for catalog items and lists of them: cleaned, priced, the bad ones dropped."""

from __future__ import annotations

from typing import Any

import pytest
from tests.content.support import stated

from shopkeeper.content.slots import Checked

# --- catalog items ----------------------------------------------------------------------------------------

BOOTS = {
    "item_id": "sku-1",
    "title": "Grey  suede\nboots",
    "url": "https://shop.example/boots",
    "image_url": "https://cdn.shop.example/boots.jpg",
    "price": 89.5,
    "currency": "eur",
    "in_stock": True,
    "rating": 4.5,
    "sizes": [41, 42],
    "variants": {"grey": 1},
    "note": "Bob\u202eevil",
}


def test_an_item_is_cleaned_and_priced() -> None:
    checked = stated("item", BOOTS, locale="de")
    assert checked == Checked(
        {
            "title": "Grey suede boots",
            "item_id": "sku-1",
            "url": "https://shop.example/boots",
            "image_url": "https://cdn.shop.example/boots.jpg",
            "price": 89.5,
            "currency": "EUR",
            "price_text": "89,50\xa0€",
            "in_stock": True,
            "rating": 4.5,
            "note": "Bobevil",  # nested containers (sizes, variants) dropped
        },
        None,
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"url": "http://shop.example/boots"}, {"title": "Boots"}),  # a bad url is dropped, not the item
        ({"image_url": "javascript:x"}, {"title": "Boots"}),
        ({"price": 89.5}, {"title": "Boots", "price": 89.5}),  # no currency anywhere: no price_text
        ({"price": 0, "currency": "EUR"}, {"title": "Boots", "price": 0, "currency": "EUR"}),  # implausible
        ({"price": float("nan"), "currency": "EUR"}, {"title": "Boots", "currency": "EUR"}),
        (
            {"price": "12.00", "currency": "usd"},
            {"title": "Boots", "price": "12.00", "currency": "USD", "price_text": "$12.00"},
        ),
        ({"price": 5, "currency": "XYZ"}, {"title": "Boots", "price": 5}),  # a bad currency: no price_text
        ({"price_text": "FREE!!!"}, {"title": "Boots"}),  # only the check writes price_text
        ({"colour": ""}, {"title": "Boots"}),
        ({"colour": None, "tags": ["a"], "meta": {"a": 1}}, {"title": "Boots"}),
        ({"ratio": float("inf"), "big": 10**40}, {"title": "Boots"}),
        ({"bad key": 1, "$x": 2, 3: "three", "ok_key": 4}, {"title": "Boots", "ok_key": 4}),
        ({"reason": "Because you liked  sandals"}, {"title": "Boots", "reason": "Because you liked sandals"}),
        ({"reason": "n/a"}, {"title": "Boots"}),
    ],
)
def test_item_fields(changes: dict[Any, Any], expected: dict[str, Any]) -> None:
    assert stated("item", {"title": "Boots", **changes}) == Checked(expected, None)


def test_an_item_takes_the_checks_currency_when_it_has_none() -> None:
    checked = stated("item", {"title": "Boots", "price": 89.5}, currency="GBP", locale="en_GB")
    assert checked.value["price_text"] == "£89.50"


def test_an_item_title_is_cut_to_120_at_a_word_boundary() -> None:
    title = stated("item", {"title": "lovely " * 40}).value["title"]
    assert len(title) <= 120
    assert title.endswith("lovely…")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"url": "https://shop.example/"}, "no usable title"),
        ({"title": ""}, "no usable title"),
        ({"title": "   \u200b"}, "no usable title"),
        ({"title": None}, "no usable title"),
        ({"title": ["Boots"]}, "no usable title"),
        ({"title": "{{ item.title }}"}, "no usable title"),
        ({"title": "null"}, "no usable title"),
        ("Boots", "not an item"),
        (["Boots"], "not an item"),
        (42, "not an item"),
    ],
)
def test_an_item_without_a_usable_title_fails(value: Any, reason: str) -> None:
    assert stated("item", value) == Checked(None, reason)


def test_items_drop_the_bad_ones_and_keep_fifty() -> None:
    good = {"title": "Boots", "reason": "Because you liked " + "sandals " * 30}
    checked = stated("items", [good, {"title": ""}, "junk", None, {"title": "Socks"}])
    assert [item["title"] for item in checked.value] == ["Boots", "Socks"]
    assert len(checked.value[0]["reason"]) <= 160
    assert checked.value[0]["reason"].endswith("sandals…")
    many = stated("items", [{"title": f"Item {n}"} for n in range(80)]).value
    assert [item["title"] for item in many] == [f"Item {n}" for n in range(50)]
    assert stated("items", ({"title": "Boots"},)).value == [{"title": "Boots"}]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], "no items"),
        ([{"title": ""}, "junk", 3], "no items"),
        ({"title": "Boots"}, "not a list of items"),
        ("Boots", "not a list of items"),
    ],
)
def test_items_that_leave_nothing_fail(value: Any, reason: str) -> None:
    assert stated("items", value) == Checked(None, reason)
