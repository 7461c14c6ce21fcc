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


def _seen(mid: str, when: str, country: str, product: str = "shirt") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": mid,
        "timestamp": when,
        "properties": {"product_id": product},
        "context": {"location": {"country": country}},
    }


def test_a_value_cites_only_the_events_that_said_it() -> None:
    """Regression: country = Germany cited 36 events, 35 of which said United Kingdom."""
    uk = [_seen(f"uk{k}", f"2011-01-{k + 1:02d}T10:00:00Z", "United Kingdom") for k in range(12)]
    germany = _seen("de", "2026-12-01T10:00:00Z", "Germany")
    country = by_key(derive_traits([*uk, germany], CATALOG))[("country", "observed")]
    assert (country.value, country.evidence) == ("Germany", {"events": ["de"], "count": 1})
    # Back to the United Kingdom: every event that said so counts, the newest 10 are cited.
    back = _seen("uk-again", "2026-12-02T10:00:00Z", "United Kingdom")
    country = by_key(derive_traits([*uk, germany, back], CATALOG))[("country", "observed")]
    assert country.value == "United Kingdom" and country.evidence["count"] == 13
    assert country.evidence["events"] == [f"uk{k}" for k in range(3, 12)] + ["uk-again"]


def test_favourites_cite_their_strongest_voters_not_every_interaction() -> None:
    """Regression: favourite_categories cited orders of 2010 while its score came from one view today."""
    old = [order(f"o{k}", f"2010-12-{k + 1:02d}T10:00:00Z", f"A{k}", ("bag-red", 2.0, 1)) for k in range(5)]
    today = _seen("today", "2026-12-01T10:00:00Z", "United Kingdom", product="holder")
    guess = by_key(derive_traits([*old, today], CATALOG))[("favourite_categories", "inferred")]
    assert guess.value == ["Candles > T-light holders"]  # the 2010 bags have faded to nothing
    assert guess.evidence["events"] == ["today"] and guess.evidence["count"] == 1
    assert guess.updated_at.year == 2026
    # An order of bags the day before: both values are chosen, and each one's vote is cited, oldest first.
    recent = order("recent", "2026-11-30T10:00:00Z", "B1", ("bag-red", 2.0, 1))
    guess = by_key(derive_traits([*old, recent, today], CATALOG))[("favourite_categories", "inferred")]
    assert guess.value == ["Bags > Lunch bags", "Candles > T-light holders"]
    assert guess.evidence["count"] == 7  # the 2010 orders voted too, with next to no weight
    assert guess.evidence["events"] == ["o0", "o1", "o2", "o3", "o4", "recent", "today"]


def test_currency_cites_the_orders_paid_in_it() -> None:
    euro = order("e1", "2011-03-11T10:00:00Z", "E1", ("shirt", 9.0, 1), currency="EUR")
    cancelled = order("e2", "2011-03-12T10:00:00Z", "E2", ("shirt", 9.0, 1), currency="EUR")
    cancel = {
        "type": "track",
        "event": "Order Cancelled",
        "messageId": "c-e2",
        "timestamp": "2011-03-13T10:00:00Z",
        "properties": {"order_id": "E2"},
    }
    currency = by_key(derive_traits([*HISTORY, euro, cancelled, cancel], CATALOG))[("currency", "observed")]
    assert currency.value == "GBP"
    assert currency.evidence == {"events": ["o1", "o2"], "count": 2}


def test_a_guess_that_contradicts_a_stated_dislike_is_dropped() -> None:
    """Regression: a guessed favourite `Bags > Lunch bags` sat beside a stated dislike of `Bags`."""
    dislike = {
        "type": "identify",
        "messageId": "no-bags",
        "timestamp": "2011-03-11T10:00:00Z",
        "userId": "u",
        "traits": {"disliked_categories": ["bags"]},
        "context": {"shopkeeper": {"stated": True}},
    }
    guess = by_key(derive_traits([*HISTORY, dislike], CATALOG))[("favourite_categories", "inferred")]
    assert guess.value == ["Clothing > Shirts"]  # the holder was bought, then returned
    assert guess.evidence["left_out_as_disliked"] == ["Bags > Lunch bags"]
    assert set(guess.evidence["events"]) == {"v1", "a1"}  # no order of bags is cited
    # A stated dislike of something else leaves the guess alone.
    other = {**dislike, "traits": {"disliked_categories": ["Bagsworth"]}}
    guess = by_key(derive_traits([*HISTORY, other], CATALOG))[("favourite_categories", "inferred")]
    assert guess.value[0] == "Bags > Lunch bags" and "left_out_as_disliked" not in guess.evidence
