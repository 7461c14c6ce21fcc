"""Deriving traits from one person's events: known answers on a small hand-written history."""

from __future__ import annotations

from typing import Any

from shopkeeper.profiles.derive import CatalogEntry, derive_traits

CATALOG = {
    "bag-red": CatalogEntry("Bags > Lunch bags", {"colour": "red"}),
    "bag-blue": CatalogEntry("Bags > Lunch bags", {"colour": "blue"}),
    "holder": CatalogEntry("Candles > T-light holders", {"colour": "white"}),
    "shirt": CatalogEntry("Clothing > Shirts", {}),
}


def order(
    mid: str, when: str, order_id: str, *products: tuple[str, float, int], **props: Any
) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": mid,
        "timestamp": when,
        "properties": {
            "order_id": order_id,
            "currency": "GBP",
            "products": [{"product_id": p, "price": price, "quantity": q} for p, price, q in products],
            **props,
        },
        "context": {"location": {"country": "United Kingdom"}, "locale": "en-GB"},
    }


HISTORY: list[dict[str, Any]] = [
    {"type": "page", "messageId": "p1", "timestamp": "2011-01-01T09:00:00Z", "context": {"locale": "de-DE"}},
    order("o1", "2011-01-02T10:00:00Z", "A1", ("bag-red", 2.0, 10), ("holder", 3.0, 2)),
    order("o2", "2011-03-01T10:00:00Z", "A2", ("bag-red", 2.0, 5), ("bag-blue", 2.0, 5)),
    order("o3", "2011-03-05T10:00:00Z", "A3", ("bag-blue", 2.0, 1)),
    {
        "type": "track",
        "event": "Order Cancelled",
        "messageId": "c3",
        "timestamp": "2011-03-06T10:00:00Z",
        "properties": {"order_id": "A3"},
    },
    {
        "type": "track",
        "event": "Order Refunded",
        "messageId": "r1",
        "timestamp": "2011-03-07T10:00:00Z",
        "properties": {"products": [{"product_id": "holder", "price": 3.0, "quantity": 1}]},
    },
    {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "v1",
        "timestamp": "2011-03-08T10:00:00Z",
        "properties": {"product_id": "shirt", "size": "M"},
    },
    {
        "type": "track",
        "event": "Product Added",
        "messageId": "a1",
        "timestamp": "2011-03-08T10:01:00Z",
        "properties": {"product_id": "shirt", "size": "M"},
    },
    {
        "type": "identify",
        "messageId": "i1",
        "timestamp": "2011-03-09T10:00:00Z",
        "userId": "u",
        "traits": {"email": "ann@example.com", "firstName": "Ann"},
    },
    {
        "type": "identify",
        "messageId": "i2",
        "timestamp": "2011-03-10T10:00:00Z",
        "userId": "u",
        "traits": {"size": "L"},
        "context": {"shopkeeper": {"stated": True}},
    },
]


def by_key(records: list[Any]) -> dict[tuple[str, str], Any]:
    return {(r.key, r.source): r for r in records}


def test_order_aggregates_count_distinct_uncancelled_orders_net_of_refunds() -> None:
    traits = by_key(derive_traits(HISTORY, CATALOG))
    assert traits[("order_count", "observed")].value == 2
    assert traits[("revenue", "observed")].value == 20 + 6 + 20 - 3  # A1 + A2 - one returned holder
    assert traits[("revenue", "observed")].evidence["refunded"] == 3.0
    assert traits[("average_order_value", "observed")].value == 23.0
    assert traits[("return_count", "observed")].value == 1
    assert traits[("currency", "observed")].value == "GBP"
    assert traits[("order_count", "observed")].evidence["events"] == ["o1", "o2"]


def test_first_and_last_seen_and_context() -> None:
    traits = by_key(derive_traits(HISTORY, CATALOG))
    assert traits[("first_seen", "observed")].value == "2011-01-01T09:00:00+00:00"
    assert traits[("last_seen", "observed")].value == "2011-03-10T10:00:00+00:00"
    assert traits[("language", "observed")].value == "en"  # the newest locale, not the first
    assert traits[("country", "observed")].value == "United Kingdom"


def test_favourites_come_from_what_was_bought_and_viewed() -> None:
    traits = by_key(derive_traits(HISTORY, CATALOG))
    assert traits[("favourite_categories", "inferred")].value[0] == "Bags > Lunch bags"
    assert traits[("favourite_colours", "inferred")].value[:2] == ["red", "blue"] or traits[
        ("favourite_colours", "inferred")
    ].value[:2] == ["blue", "red"]
    assert "white" not in traits[("favourite_colours", "inferred")].value  # bought once, then returned
    assert traits[("favourite_sizes", "inferred")].value == ["M"]


def test_last_viewed_and_carted_items() -> None:
    traits = by_key(derive_traits(HISTORY, CATALOG))
    assert traits[("last_viewed_items", "observed")].value == ["shirt"]
    assert traits[("last_carted_items", "observed")].value == ["shirt"]


def test_identify_traits_are_observed_unless_marked_stated() -> None:
    traits = by_key(derive_traits(HISTORY, CATALOG))
    assert traits[("firstName", "observed")].value == "Ann"
    assert traits[("email", "observed")].evidence["events"] == ["i1"]
    stated = traits[("size", "stated")]
    assert stated.value == "L"
    assert stated.confirmed_at is not None
    assert ("size", "observed") not in traits


def test_no_events_no_traits() -> None:
    assert derive_traits([], CATALOG) == []
