"""Back in stock: one moment per live wish the restocked variant meets, once per wish and restock episode
(stock that flaps is one episode), and when fewer units come back than people wished for them, the most
valuable wishes first and the rest kept for later. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.moments.moments_support import Trousers, messages, open_shop, order, outcomes, person, wishes

from shopkeeper.catalog.items import parse_items
from shopkeeper.shop import Shop

BIS = "back_in_stock"


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with open_shop(database_url) as opened:
        yield opened


def wish(shop: Shop, user_id: str, variant: str = "grey-34", item: str = "trousers-grey") -> int:
    made = shop.moments.add_wish(user_id, {"item_id": item, "variant_id": variant, "source": "staff"})
    return int(made["id"])


def test_a_restock_makes_one_moment_per_matching_wish(shop: Shop) -> None:
    trousers = Trousers(shop, out=(("grey", "34"), ("grey", "35")))
    ids = {name: (person(shop, name), wish(shop, name)) for name in ("ann", "bob", "cy")}
    person(shop, "dan")
    wish(shop, "dan", "grey-35")
    at = datetime.now(UTC).replace(microsecond=0)
    trousers.set("grey", "34", 5, at=at)
    stepped = shop.moments.engine.step()
    assert (stepped.changes, stepped.made, stepped.suppressed) == (1, 3, 0)

    rows = messages(shop, rule=BIS)
    assert sorted((r.person_id, r.wish_id) for r in rows) == sorted(ids.values())
    assert {(r.status, r.reason, r.channel, r.item_id, r.variant_id) for r in rows} == {
        ("pending", None, "staff", "trousers-grey", "grey-34")
    }
    for name in ("ann", "bob", "cy"):
        (found,) = wishes(shop, name)
        assert (found["status"], datetime.fromisoformat(found["notified_at"])) == ("notified", at)
    assert [w["status"] for w in wishes(shop, "dan")] == ["open"]
    assert messages(shop, "dan") == []


def test_stock_that_was_not_out_is_no_restock(shop: Shop) -> None:
    trousers = Trousers(shop)
    person(shop, "ann")
    wish(shop, "ann", "grey-33")  # a wish for a variant that is in stock already (5)
    trousers.set("grey", "33", 9)
    trousers.set("grey", "36", 0)
    trousers.set("grey", "36", 2)  # back, but nobody wished for it
    shop.moments.engine.step()
    assert messages(shop) == []


def test_stock_that_flaps_within_the_window_is_one_episode(shop: Shop) -> None:
    trousers = Trousers(shop)
    ann = person(shop, "ann")
    wish_id = wish(shop, "ann")
    t0 = datetime.now(UTC)
    engine = shop.moments.engine

    trousers.set("grey", "34", 3, at=t0)
    engine.step(now=t0)
    assert shop.worker().deliver().sent == 1
    for minutes, stock in ((1, 0), (2, 2), (3, 0), (4, 4)):
        trousers.set("grey", "34", stock, at=t0 + timedelta(minutes=minutes))
        engine.step(now=t0 + timedelta(minutes=minutes))
    assert outcomes(messages(shop, "ann")) == [
        (BIS, "sent", None),
        (BIS, "suppressed", "duplicate"),
        (BIS, "suppressed", "duplicate"),
    ]

    # past the dedupe window (7 days), the next restock is a new episode: one new moment
    later = t0 + timedelta(days=7, minutes=10)
    trousers.set("grey", "34", 0, at=later - timedelta(minutes=1))
    trousers.set("grey", "34", 2, at=later)
    engine.step(now=later)
    rows = messages(shop, "ann")
    assert outcomes(rows)[3:] == [(BIS, "pending", None)]
    assert (rows[3].person_id, rows[3].wish_id, rows[3].variant_id) == (ann, wish_id, "grey-34")
    (found,) = wishes(shop, "ann")
    assert datetime.fromisoformat(found["notified_at"]) == later


def test_a_shorter_dedupe_window_makes_a_new_episode_sooner(shop: Shop) -> None:
    shop.moments.put_rule(
        BIS,
        {"trigger": BIS, "channels": ["staff"], "params": {"dedupe_days": 1}},
        origin="cli",
    )
    trousers = Trousers(shop)
    person(shop, "ann")
    wish(shop, "ann")
    t0 = datetime.now(UTC)
    for hours, stock in ((0, 3), (1, 0), (2, 1), (25, 0), (26, 1)):
        trousers.set("grey", "34", stock, at=t0 + timedelta(hours=hours))
        shop.moments.engine.step(now=t0 + timedelta(hours=hours))
    assert outcomes(messages(shop, "ann")) == [
        (BIS, "pending", None),
        (BIS, "suppressed", "duplicate"),
        (BIS, "pending", None),
    ]


def buyers(shop: Shop, now: datetime, spent: dict[str, tuple[float, int]], wished: tuple[str, ...]) -> None:
    """People who wish for the grey 34, in the order of `wished`; some bought (revenue, days ago) before."""
    for name in wished:
        person(shop, name)
        if name in spent:
            revenue, days = spent[name]
            when = (now - timedelta(days=days)).isoformat()
            order(shop, name, f"o-{name}", "trousers-blue", revenue=revenue, timestamp=when)
        wish(shop, name)


def one_by_one(
    shop: Shop, trousers: Trousers, now: datetime, rounds: int
) -> tuple[list[str], list[list[str]]]:
    """Restock the grey 34 one unit at a time, flapping through 0 (one episode): who got each unit, and
    who was told there was not enough stock, round by round."""
    served: list[str] = []
    short: list[list[str]] = []
    for minute in range(rounds):
        trousers.set("grey", "34", 0, at=now + timedelta(minutes=minute, seconds=1))
        trousers.set("grey", "34", 1, at=now + timedelta(minutes=minute, seconds=2))
        before = len(messages(shop))
        shop.moments.engine.step(now=now + timedelta(minutes=minute, seconds=2))
        rows = messages(shop)[before:]
        names = {r.person_id: shop.moments.person_ref(r.person_id) or "" for r in rows}
        served += [names[r.person_id] for r in rows if r.status == "pending"]
        short.append(sorted(names[r.person_id] for r in rows if r.reason == "not_enough_stock"))
    return served, short


def test_fewer_units_than_wishes_go_to_the_newest_buyer_then_the_oldest_wish(shop: Shop) -> None:
    """With revenue equal, the newest purchase first; among people who never bought, who asked first.
    Each later unit (the stock flapping within one episode) goes to the next wish in line; the wishes
    served already are duplicates, and the wish left over is kept, live."""
    trousers = Trousers(shop)
    now = datetime.now(UTC)
    spent = {"recent": (100.0, 1), "older": (100.0, 10)}
    buyers(shop, now, spent, ("first", "older", "recent", "last"))
    served, short = one_by_one(shop, trousers, now, 3)
    assert served == ["recent", "older", "first"]
    assert short == [["first", "last", "older"], ["first", "last"], ["last"]]
    assert [r.reason for r in messages(shop, "recent")] == [None, "duplicate", "duplicate"]
    (kept,) = wishes(shop, "last")
    assert (kept["status"], kept["notified_at"]) == ("open", None)


def test_fewer_units_than_wishes_go_to_the_biggest_spender_first(shop: Shop) -> None:
    """Revenue before recency: 300 spent a month ago beats 100 spent yesterday. The `revenue` trait is
    read as the traits table holds it, and a profile is rebuilt only when it is read, so it must be
    up to date for the people ranked (here nobody reads their profiles before the restock)."""
    trousers = Trousers(shop)
    now = datetime.now(UTC)
    buyers(shop, now, {"big": (300.0, 30), "recent": (100.0, 1)}, ("recent", "big"))
    served, short = one_by_one(shop, trousers, now, 1)
    assert (served, short) == (["big"], [["recent"]])


def test_the_wishes_beyond_the_stock_are_kept_for_the_next_restock(shop: Shop) -> None:
    trousers = Trousers(shop)
    for name in ("ann", "bob", "cy"):
        person(shop, name)
        wish(shop, name)
    t0 = datetime.now(UTC)
    trousers.set("grey", "34", 1, at=t0)
    stepped = shop.moments.engine.step(now=t0)
    assert (stepped.made, stepped.suppressed) == (1, 2)
    assert outcomes(messages(shop, "ann")) == [(BIS, "pending", None)]  # the oldest wish, all else equal
    for name in ("bob", "cy"):
        assert outcomes(messages(shop, name)) == [(BIS, "suppressed", "not_enough_stock")]
        assert [w["status"] for w in wishes(shop, name)] == ["open"]

    trousers.set("grey", "34", 0, at=t0 + timedelta(hours=1))
    trousers.set("grey", "34", 5, at=t0 + timedelta(hours=2))
    shop.moments.engine.step(now=t0 + timedelta(hours=2))
    assert outcomes(messages(shop, "ann"))[1:] == [(BIS, "suppressed", "duplicate")]
    for name in ("bob", "cy"):
        assert outcomes(messages(shop, name))[1:] == [(BIS, "pending", None)]


CHINOS = "chinos"


def chinos(stock: dict[str, int]) -> list[dict[str, object]]:
    """Chinos in two colours and two leg lengths: "grey, 34" is two variants, so a wish for it is a wish
    for attributes, not for one variant."""
    variants = [
        {
            "variant_id": f"{colour}-{size}-{leg}",
            "attributes": {"colour": colour, "size": size, "leg": leg},
            "stock": stock.get(f"{colour}-{size}-{leg}", 0),
        }
        for colour in ("grey", "blue")
        for size in ("34", "35")
        for leg in ("regular", "long")
    ]
    return [{"item_id": CHINOS, "title": "Chinos", "category": "Clothing > Trousers", "variants": variants}]


def test_a_wish_for_a_colour_in_the_stated_size_matches_that_variant_only(shop: Shop) -> None:
    shop.store.catalog.upsert(parse_items(chinos({})))
    person(shop, "ann", {"size": "34"})
    shop.track("Back In Stock Requested", user_id="ann", properties={"product_id": CHINOS, "colour": "Grey"})
    shop.moments.engine.step()
    (found,) = wishes(shop, "ann")
    assert (found["variant_id"], found["attributes"], found["source"]) == (
        None,
        {"colour": "Grey", "size": "34"},
        "stated",
    )

    shop.store.catalog.upsert(parse_items(chinos({"grey-35-regular": 4, "blue-34-regular": 4})))
    shop.moments.engine.step()
    assert messages(shop, "ann") == []  # the wrong size, the wrong colour

    shop.store.catalog.upsert(
        parse_items(chinos({"grey-35-regular": 4, "blue-34-regular": 4, "grey-34-long": 2}))
    )
    shop.moments.engine.step()
    rows = messages(shop, "ann")
    assert outcomes(rows) == [(BIS, "pending", None)]
    assert (rows[0].item_id, rows[0].variant_id, rows[0].wish_id) == (CHINOS, "grey-34-long", found["id"])


def test_a_moment_whose_variant_sold_out_again_is_suppressed_at_send_time(shop: Shop) -> None:
    trousers = Trousers(shop)
    person(shop, "ann")
    wish(shop, "ann")
    trousers.set("grey", "34", 1)
    shop.moments.engine.step()
    trousers.set("grey", "34", 0)
    delivered = shop.worker().deliver()
    assert (delivered.sent, delivered.suppressed) == (0, 1)
    assert outcomes(messages(shop, "ann")) == [(BIS, "suppressed", "out_of_stock")]
    assert shop.moments.tasks(person="ann")["items"] == []


def scarf(stock: int) -> list[dict[str, object]]:
    one = {"variant_id": "scarf-one", "attributes": {"colour": "grey"}, "stock": stock}
    return [{"item_id": "scarf", "title": "Scarf", "category": "Accessories", "variants": [one]}]


def test_a_wish_for_the_item_itself_is_met_when_it_comes_back(shop: Shop) -> None:
    """Regression: a request that names the item only (and no size is known) is a wish for the item,
    whose `attributes` are empty; it used to match no variant at all, so it could never be kept."""
    shop.store.catalog.upsert(parse_items(scarf(0)))
    shop.moments.engine.step()
    person(shop, "ann")
    person(shop, "bob")
    shop.track("Back In Stock Requested", user_id="ann", properties={"product_id": "scarf"})
    shop.moments.engine.step()
    shop.moments.add_wish("bob", {"item_id": "scarf", "source": "staff"})
    assert [(w["variant_id"], w["attributes"]) for w in wishes(shop, "ann") + wishes(shop, "bob")] == [
        (None, {}),
        (None, {}),
    ]
    shop.store.catalog.upsert(parse_items(scarf(4)))
    shop.moments.engine.step()
    for name in ("ann", "bob"):
        rows = messages(shop, name)
        assert outcomes(rows) == [(BIS, "pending", None)]
        assert (rows[0].item_id, rows[0].variant_id) == ("scarf", "scarf-one")
