"""The triggers other than back in stock: price drop, new arrival, milestones, abandoned cart, winback and
ask. Each test installs the one rule it is about (staff outreach, so that no mail server is needed) in a
shop without the default rules. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.moments.moments_support import Trousers, messages, open_shop, order, outcomes, person, view

from shopkeeper.catalog.items import parse_items
from shopkeeper.shop import Shop

BUDGET = '{"day": 100, "week": 100}'  # the contact budget is test_respect's subject, not these tests'


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with open_shop(database_url, default_rules=False, contact_budget=BUDGET) as opened:
        yield opened


def rule(shop: Shop, name: str, trigger: str, params: dict[str, Any] | None = None, **fields: Any) -> None:
    shop.moments.put_rule(
        name, {"trigger": trigger, "channels": ["staff"], "params": params or {}, **fields}, origin="cli"
    )


def step(shop: Shop, now: datetime | None = None) -> None:
    shop.moments.engine.step(now=now)


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def contexts(rows: list[Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r.context.get(k) for k in keys) for r in rows]


# ---- price drop --------------------------------------------------------------------------------------


PRICES = {  # item: (before, after, whether it is a moment under min_percent 10 and min_amount 15)
    "a": (120.0, 108.0, False),  # 10 %, but only 12 off: under min_amount
    "b": (120.0, 105.0, True),  # 12.5 %, 15 off
    "c": (200.0, 185.0, False),  # 15 off, but only 7.5 %: under min_percent
    "d": (200.0, 180.0, True),  # 10 %, 20 off: both thresholds met exactly
    "e": (120.0, 150.0, False),  # a price rise
}


def priced(at: int) -> list[dict[str, Any]]:
    return [{"item_id": i, "title": f"Item {i}", "price": p[at]} for i, p in PRICES.items()]


def test_a_price_drop_meets_both_thresholds(shop: Shop) -> None:
    rule(shop, "cheaper", "price_drop", {"min_percent": 10, "min_amount": 15})
    shop.store.catalog.upsert(parse_items(priced(0)))
    person(shop, "ann")
    for item_id in PRICES:
        view(shop, "ann", {"product_id": item_id})
    step(shop)
    shop.store.catalog.upsert(parse_items(priced(1)))
    step(shop)
    rows = messages(shop, "ann")
    assert sorted(
        (r.item_id, r.variant_id, r.status, r.context["before"], r.context["after"]) for r in rows
    ) == [
        (item_id, None, "pending", before, after)
        for item_id, (before, after, fires) in PRICES.items()
        if fires
    ]
    assert {r.context["moment"] for r in rows} == {"price_drop"}


def test_a_price_drop_reaches_only_people_who_viewed_or_carted_it_lately(shop: Shop) -> None:
    rule(shop, "cheaper", "price_drop", {"min_percent": 10, "seen_days": 30})
    trousers = Trousers(shop)
    for name in ("viewer", "carter", "long-ago", "buyer", "other"):
        person(shop, name)
    view(shop, "viewer", {"product_id": "trousers-grey", "variant_id": "grey-33"}, timestamp=ago(days=5))
    view(shop, "carter", {"product_id": "trousers-grey"}, event="Product Added", timestamp=ago(days=20))
    view(shop, "long-ago", {"product_id": "trousers-grey"}, timestamp=ago(days=40))
    order(shop, "buyer", "o-1", "trousers-grey", timestamp=ago(days=3))  # bought, never browsed
    view(shop, "other", {"product_id": "trousers-blue"}, timestamp=ago(days=1))
    step(shop)
    trousers.set_price("grey", 90.0)
    step(shop)
    reached = {shop.moments.person_ref(r.person_id): outcomes([r])[0] for r in messages(shop)}
    assert reached == {"viewer": ("cheaper", "pending", None), "carter": ("cheaper", "pending", None)}


def test_a_variant_price_drop_is_a_moment_about_that_variant(shop: Shop) -> None:
    rule(shop, "cheaper", "price_drop", {"min_percent": 10})
    trousers = Trousers(shop)
    person(shop, "ann")
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-33"})
    trousers.set_price("grey", 120.0, size="33")  # the variant gets a price of its own: no drop
    step(shop)
    trousers.set_price("grey", 96.0, size="33")
    step(shop)
    rows = messages(shop, "ann")
    assert outcomes(rows) == [("cheaper", "pending", None)]
    assert (rows[0].item_id, rows[0].variant_id) == ("trousers-grey", "grey-33")
    assert contexts(rows, "before", "after") == [(120.0, 96.0)]


def test_the_default_price_drop_rule_is_ten_percent(database_url: str) -> None:
    with open_shop(database_url, smtp_host="127.0.0.1") as shop:  # email is set up: the rule's channel
        trousers = Trousers(shop)
        person(shop, "ann")
        view(shop, "ann", {"product_id": "trousers-grey"})
        trousers.set_price("grey", 110.0)  # 8.3 % off
        step(shop)
        assert messages(shop) == []
        trousers.set_price("grey", 99.0)  # 10 % off
        step(shop)
        rows = messages(shop, "ann")
        assert outcomes(rows) == [("price_drop", "pending", None)]
        assert (rows[0].channel, rows[0].template) == ("email", "price_drop")


# ---- new arrival -----------------------------------------------------------------------------------


def green(stock: dict[str, int], *, created_at: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "item_id": "trousers-green",
            "title": "Green wool trousers",
            "category": "Clothing > Trousers",
            "price": 130.0,
            "attributes": {"colour": "Green", "brand": "Fenwick"},
            "variants": [
                {"variant_id": f"green-{size}", "attributes": {"size": size}, "stock": stock.get(size, 0)}
                for size in ("32", "33", "34")
            ],
            **({"created_at": created_at} if created_at else {}),
        }
    ]


def test_a_new_arrival_reaches_people_whose_stated_tastes_it_meets_in_their_size(shop: Shop) -> None:
    rule(shop, "new", "new_arrival")
    stated = {
        "category": {"favourite_categories": ["clothing"], "size": "34"},
        "colour": {"favourite_colours": ["green"]},
        "brand": {"favourite_brands": ["FENWICK"], "sizes": {"Clothing > Trousers": "33"}},
        "other-taste": {"favourite_categories": ["Shoes"], "favourite_colours": ["red"]},
        "sold-out-size": {"favourite_colours": ["green"], "size": "32"},
        "no-such-size": {"favourite_categories": ["Clothing"], "size": "31"},
    }
    for name, preferences in stated.items():
        person(shop, name, preferences)
    person(shop, "nothing-stated")
    step(shop)
    shop.store.catalog.upsert(parse_items(green({"33": 2, "34": 1})))
    step(shop)
    reached = {
        shop.moments.person_ref(r.person_id): (r.status, r.item_id, r.context["matches"])
        for r in messages(shop)
    }
    assert reached == {
        "category": ("pending", "trousers-green", "category clothing"),
        "colour": ("pending", "trousers-green", "colour Green"),
        "brand": ("pending", "trousers-green", "brand Fenwick"),
    }


def test_an_item_older_than_max_age_is_no_new_arrival(shop: Shop) -> None:
    rule(shop, "new", "new_arrival", {"max_age_days": 14})
    person(shop, "ann", {"favourite_colours": ["green"]})
    step(shop)
    shop.store.catalog.upsert(parse_items(green({"34": 3}, created_at=ago(days=15))))
    step(shop)
    assert messages(shop) == []


# ---- milestones --------------------------------------------------------------------------------------


def milestones(shop: Shop, user_id: str) -> list[tuple[Any, ...]]:
    return contexts(messages(shop, user_id), "milestone", "value")


def test_the_nth_order_is_a_milestone(shop: Shop) -> None:
    rule(shop, "loyal", "milestone", {"orders": [2, 4]})
    person(shop, "ann")
    person(shop, "bob")
    for n in range(1, 6):
        order(shop, "ann", f"a-{n}", "trousers-blue")
        step(shop)
    order(shop, "bob", "b-1", "trousers-blue")
    step(shop)
    assert milestones(shop, "ann") == [("orders", 2), ("orders", 4)]
    assert outcomes(messages(shop, "ann")) == [("loyal", "pending", None)] * 2
    assert messages(shop, "bob") == []


def test_a_spend_tier_is_crossed_once(shop: Shop) -> None:
    rule(shop, "spender", "milestone", {"spend": [200, 500]})
    person(shop, "ann")
    person(shop, "bob")
    for n, revenue in enumerate((150.0, 100.0, 100.0, 300.0, 50.0)):  # 150, 250, 350, 650, 700
        order(shop, "ann", f"a-{n}", "trousers-blue", revenue=revenue)
        step(shop)
    order(shop, "bob", "b-1", "trousers-blue", revenue=600.0)  # both tiers at once
    step(shop)
    assert milestones(shop, "ann") == [("spend", 200), ("spend", 500)]
    assert sorted(milestones(shop, "bob")) == [("spend", 200), ("spend", 500)]


def test_a_trait_crossing_a_value_is_a_milestone_once(shop: Shop) -> None:
    rule(shop, "two-million", "milestone", {"trait": "miles", "value": 2_000_000})
    person(shop, "ann")
    person(shop, "bob")
    for miles in (1_999_999, "2000000", 2_000_000, 2_400_000, 10, 2_100_000):
        shop.identify(user_id="ann", traits={"miles": miles})
        step(shop)
    shop.identify(user_id="bob", traits={"miles": 1_999_999.5})
    step(shop)
    assert milestones(shop, "ann") == [("trait", 2_000_000)]
    assert contexts(messages(shop, "ann"), "what") == [("miles",)]
    assert messages(shop, "bob") == []


def test_an_anniversary_of_the_first_order_for_people_who_bought_this_year(shop: Shop) -> None:
    rule(shop, "anniversary", "milestone", {"anniversary": True})
    day = datetime(datetime.now(UTC).year - 1, 6, 15, 12, tzinfo=UTC)
    years_ago = {"ann": 2, "bob": 1, "cy": 2, "dan": 2}
    for name, years in years_ago.items():
        person(shop, name)
        first = day.replace(year=day.year - years) + timedelta(hours=1)
        if name == "dan":
            first += timedelta(days=1)  # not to the day
        order(shop, name, f"{name}-1", "trousers-blue", timestamp=first.isoformat())
    for name in ("ann", "bob", "dan"):
        order(shop, name, f"{name}-2", "trousers-blue", timestamp=(day - timedelta(days=100)).isoformat())
    # cy bought nothing in the last year: no anniversary note for a customer gone quiet

    assert shop.moments.engine.daily(now=day) == 2
    assert shop.moments.engine.daily(now=day + timedelta(hours=1)) == 0  # once a day
    assert milestones(shop, "ann") == [("anniversary", 2)]
    assert milestones(shop, "bob") == [("anniversary", 1)]
    assert messages(shop, "cy") == messages(shop, "dan") == []
    assert shop.moments.engine.daily(now=day + timedelta(days=1)) == 1  # dan's first order was a day later
    assert milestones(shop, "dan") == [("anniversary", 2)]


# ---- abandoned cart ----------------------------------------------------------------------------------


def test_an_abandoned_cart_is_due_after_the_delay_and_suppressed_if_they_bought(shop: Shop) -> None:
    rule(shop, "cart", "abandoned_cart", delay_seconds=3600)
    Trousers(shop)
    for name in ("ann", "bob"):
        person(shop, name)
    cart_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    for name in ("ann", "bob"):
        view(
            shop,
            name,
            {"product_id": "trousers-grey", "variant_id": "grey-33"},
            event="Product Added",
            timestamp=cart_at.isoformat(),
        )
    same_day = (cart_at + timedelta(seconds=1)).isoformat()
    view(
        shop, "ann", {"product_id": "trousers-blue"}, event="Product Added", timestamp=same_day
    )  # one moment
    step(shop)
    rows = messages(shop)
    assert [(r.rule, r.status, r.item_id, r.due_at) for r in rows] == [
        ("cart", "pending", "trousers-grey", cart_at + timedelta(hours=1))
    ] * 2
    assert {r.context["cart_at"] for r in rows} == {cart_at.isoformat()}

    assert shop.worker().deliver().busy is False  # not due yet
    order(shop, "ann", "o-1", "trousers-grey")
    step(shop)
    engine = shop.moments.engine
    later = cart_at + timedelta(hours=2)
    with shop.store.engine.connect() as conn:
        verdicts = {shop.moments.person_ref(r.person_id): engine.recheck(conn, r, later) for r in rows}
    assert (verdicts["ann"].status, verdicts["ann"].reason) == ("suppressed", "purchased")
    assert (verdicts["bob"].status, verdicts["bob"].reason) == ("pending", None)

    delivered = shop.worker().deliver(now=later)
    assert (delivered.sent, delivered.suppressed) == (1, 1)
    assert outcomes(messages(shop, "ann")) == [("cart", "suppressed", "purchased")]
    assert outcomes(messages(shop, "bob")) == [("cart", "sent", None)]


def test_an_order_before_the_cart_does_not_cancel_it(shop: Shop) -> None:
    rule(shop, "cart", "abandoned_cart", delay_seconds=0)
    Trousers(shop)
    person(shop, "ann")
    order(shop, "ann", "o-1", "trousers-blue", timestamp=ago(minutes=10))
    view(shop, "ann", {"product_id": "trousers-grey"}, event="Product Added", timestamp=ago(minutes=5))
    step(shop)
    assert shop.worker().deliver().sent == 1
    assert outcomes(messages(shop, "ann")) == [("cart", "sent", None)]


# ---- winback -----------------------------------------------------------------------------------------


def test_winback_after_factor_times_their_usual_gap_once_per_last_order(shop: Shop) -> None:
    rule(shop, "winback", "winback", {"factor": 2, "min_days": 60, "min_orders": 2})
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=300)
    orders = {
        "ann": (200, 170, 140),  # every 30 days, silent for 140: back, please
        "bob": (300, 200, 100),  # every 100 days, silent for 100: not yet (factor 2)
        "cy": (90, 85, 50),  # every 20 days, silent for 50: under min_days
        "dan": (400,),  # one order: no rhythm yet (min_orders)
    }
    for name, days in orders.items():
        person(shop, name)
        for n, before in enumerate(days):
            order(
                shop,
                name,
                f"{name}-{n}",
                "trousers-blue",
                timestamp=(day - timedelta(days=before)).isoformat(),
            )

    engine = shop.moments.engine
    assert engine.daily(now=day) == 1
    rows = messages(shop, "ann")
    assert outcomes(rows) == [("winback", "pending", None)]
    expected = {
        "last_order": (day - timedelta(days=140)).date().isoformat(),
        "usual_gap_days": 30,
        "silent_days": 140,
    }
    assert {k: rows[0].context[k] for k in expected} == expected
    assert all(messages(shop, name) == [] for name in ("bob", "cy", "dan"))

    assert engine.daily(now=day + timedelta(days=1)) == 0  # the same last order: once
    order(shop, "ann", "ann-back", "trousers-blue", timestamp=(day + timedelta(days=5)).isoformat())
    assert engine.daily(now=day + timedelta(days=200)) == 3  # ann again (a new last order), bob and cy now
    assert [r.context["last_order"] for r in messages(shop, "ann")] == [
        (day - timedelta(days=140)).date().isoformat(),
        (day + timedelta(days=5)).date().isoformat(),
    ]


# ---- ask ---------------------------------------------------------------------------------------------


def scarf() -> list[dict[str, Any]]:
    return [
        {
            "item_id": "scarf",
            "title": "Scarf",
            "category": "Accessories",
            "variants": [{"variant_id": "scarf-grey", "attributes": {"colour": "grey"}, "stock": 3}],
        }
    ]


def test_ask_for_a_size_once_per_season_until_they_state_one(shop: Shop) -> None:
    rule(shop, "ask-size", "ask", {"question": "size"})
    Trousers(shop)
    shop.store.catalog.upsert(parse_items(scarf()))
    person(shop, "ann")
    person(shop, "bob", {"size": "34"})
    person(shop, "cy")
    step(shop)

    view(shop, "cy", {"product_id": "scarf"})  # nothing sized: no question
    view(shop, "bob", {"product_id": "trousers-grey"})  # they told us their size
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-33"})
    view(shop, "ann", {"product_id": "trousers-blue"})
    step(shop)
    step(shop)
    view(shop, "ann", {"product_id": "trousers-blue"})
    step(shop)
    rows = messages(shop)
    assert [(shop.moments.person_ref(r.person_id), r.rule, r.status, r.item_id) for r in rows] == [
        ("ann", "ask-size", "pending", "trousers-grey")
    ]
    assert rows[0].context["question"] == "size"

    next_season = datetime.now(UTC) + timedelta(days=100)
    view(shop, "ann", {"product_id": "trousers-blue"}, timestamp=next_season.isoformat())
    step(shop, next_season)
    assert len(messages(shop, "ann")) == 2  # a new season: they may be asked once more

    shop.state_preferences("cy", {"size": "M"})
    later = next_season + timedelta(days=100)
    view(shop, "cy", {"product_id": "trousers-grey"}, timestamp=later.isoformat())
    step(shop, later)
    assert messages(shop, "cy") == []


def test_the_share_who_answer_an_ask_is_measured(shop: Shop) -> None:
    rule(shop, "ask-size", "ask", {"question": "size"})
    Trousers(shop)
    for name in ("ann", "bob"):
        person(shop, name)
        view(shop, name, {"product_id": "trousers-grey"})
    step(shop)
    assert shop.worker().deliver().sent == 2
    assert shop.moments.rule("ask-size")["answered"] == {"asked": 2, "answered": 0, "share": 0.0}
    shop.state_preferences("ann", {"size": "34"})
    assert shop.moments.rule("ask-size")["answered"] == {"asked": 2, "answered": 1, "share": 0.5}
