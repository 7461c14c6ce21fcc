"""Every reason decide gives is true of the items it shows: checked claim by claim, over generated people
and preferences, on a small real shop (the first 12,000 lines of the bundled Online Retail sample, some
items given sizes and stock).

Regression: a person who stated `favourite_categories: ["Mugs"]` was told "popular right now in the
categories you told us you like" beside bags and bunting, because only the shop's 50 x n best sellers
were considered and mugs sell less than those.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shopkeeper import Shop
from shopkeeper.catalog import parse_items
from shopkeeper.decide.log import DecidedItem, Decision
from shopkeeper.decide.reasons import Reason
from shopkeeper.events.importers.orders import import_orders
from shopkeeper.events.importers.source import open_file
from shopkeeper.recommend.bundle import POPULAR_ITEMS, ModelBundle
from shopkeeper.settings import Settings
from shopkeeper.store.schema import item_variants, items

SAMPLE_LINES = 12_000  # Dec 2010 to mid-Feb 2011: about 2,000 items, 800 customers
SIZES = ("S", "M", "L")
DAY = "2011-02-10"


@dataclass(frozen=True)
class Item:
    title: str
    category: str
    sizes_in_stock: frozenset[str]


class SampleShop:
    """The shop, its model, and what the checks need to know of its catalog."""

    def __init__(self, shop: Shop, bundle: ModelBundle, items: dict[str, Item]) -> None:
        self.shop = shop
        self.bundle = bundle
        self.items = items
        # Every category and every level above one, as a person might state them.
        paths = [i.category.split(" > ") for i in items.values() if i.category]
        self.categories = sorted({" > ".join(parts[:k]) for parts in paths for k in (1, 2)})
        self.sold = sorted(bundle.index)  # the model's items
        self.people = itertools.count()

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"SampleShop({len(self.items)} items, {len(self.categories)} categories)"


def _sized(item_id: str, title: str, category: str, number: int) -> dict[str, Any]:
    """A sample item given sizes: some sizes out of stock, some in."""
    stock = [number % 3, (number + 1) % 2 * 4, 0 if number % 4 == 0 else 2]
    return {
        "item_id": item_id,
        "title": title,
        "category": category,
        "variants": [
            {"variant_id": f"{item_id}-{size}", "attributes": {"size": size}, "stock": count}
            for size, count in zip(SIZES, stock, strict=True)
        ],
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleShop]:
    root = tmp_path_factory.mktemp("sample")
    raw = (files("shopkeeper") / "data" / "online_retail_sample.csv.gz").read_bytes()
    lines = gzip.decompress(raw).decode().splitlines()[: SAMPLE_LINES + 1]
    path = root / "sample.csv"
    path.write_text("\n".join(lines) + "\n")
    # No holdout: the explicit cases below must not land in it (the property covers the same popularity
    # baseline through people who withdrew consent to personalization).
    shop = Shop.open(f"sqlite:///{root / 'shop.db'}", settings=Settings(holdout_share=0.0))
    with open_file(path) as source:
        import_orders(shop.store, source)
    rows_query = select(items.c.item_id, items.c.title, items.c.category)
    with shop.store.engine.connect() as conn:
        rows = conn.execute(rows_query).all()
    shop.store.catalog.upsert(
        parse_items([_sized(*row, number) for number, row in enumerate(rows) if number % 7 == 0])
    )
    shop.train()
    bundle = shop._deciding().bundle()
    assert bundle is not None
    found: dict[str, Item] = {}
    with shop.store.engine.connect() as conn:
        stock: dict[str, set[str]] = {}
        for item_id, attributes, count in conn.execute(
            select(item_variants.c.item_id, item_variants.c.attributes, item_variants.c.stock)
        ):
            if count is not None and count > 0:
                stock.setdefault(item_id, set()).add(str(orjson.loads(attributes)["size"]).lower())
        for item_id, title, category in conn.execute(rows_query):
            found[item_id] = Item(title, category, frozenset(stock.get(item_id, ())))
    yield SampleShop(shop, bundle, found)
    shop.close()


def _within(category: str, parent: str) -> bool:
    category, parent = category.lower(), parent.lower()
    return category == parent or category.startswith(parent + " > ")


def _title(shop: SampleShop, item_id: str) -> str:
    title = shop.items[item_id].title
    return title.strip().capitalize() if title.isupper() else title


@dataclass(frozen=True)
class Person:
    favourites: list[str]
    dislikes: list[str]
    size: str | None
    rejected: list[str]
    bought: list[str]
    viewed: list[str]
    placement: str
    n: int
    consented: bool = True


@dataclass(frozen=True)
class Draw:
    """A person as drawn: catalog positions, not ids, so the strategy does not depend on the shop."""

    favourites: list[int]
    dislikes: list[int]
    size: str | None
    rejected: list[int]
    bought: list[int]
    viewed: list[int]
    placement: str
    n: int
    consented: bool

    def person(self, shop: SampleShop) -> Person:
        def pick(positions: list[int], among: list[str]) -> list[str]:
            return list(dict.fromkeys(among[k % len(among)] for k in positions))

        return Person(
            favourites=pick(self.favourites, shop.categories),
            dislikes=pick(self.dislikes, shop.categories),
            size=self.size,
            rejected=pick(self.rejected, shop.sold),
            bought=pick(self.bought, shop.sold),
            viewed=pick(self.viewed, shop.sold),
            placement=self.placement,
            n=self.n,
            consented=self.consented,
        )


POSITIONS = st.integers(0, 100_000)
PEOPLE = st.builds(
    Draw,
    favourites=st.lists(POSITIONS, max_size=2),
    dislikes=st.lists(POSITIONS, max_size=2),
    size=st.none() | st.sampled_from(SIZES),
    rejected=st.lists(POSITIONS, max_size=3),
    bought=st.lists(POSITIONS, max_size=4),
    viewed=st.lists(POSITIONS, max_size=3),
    placement=st.sampled_from(["web", "new_for_you"]),
    n=st.integers(1, 12),
    consented=st.booleans(),
)


def _events(user: str, person: Person) -> list[dict[str, Any]]:
    stated = {
        key: value
        for key, value in (
            ("favourite_categories", person.favourites),
            ("disliked_categories", person.dislikes),
            ("size", person.size),
            ("rejected_items", person.rejected),
        )
        if value
    }
    events: list[dict[str, Any]] = [
        {
            "type": "identify",
            "userId": user,
            "traits": stated,
            "context": {"shopkeeper": {"stated": True}},
            "messageId": f"{user}-stated",
            "timestamp": f"{DAY}T08:00:00Z",
        }
    ]
    for number, item_id in enumerate(person.bought):
        events.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": user,
                "messageId": f"{user}-order-{number}",
                "timestamp": f"{DAY}T09:{number:02d}:00Z",
                "properties": {"order_id": f"{user}-{number}", "products": [{"product_id": item_id}]},
            }
        )
    for number, item_id in enumerate(person.viewed):
        events.append(
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": user,
                "messageId": f"{user}-view-{number}",
                "timestamp": f"{DAY}T10:{number:02d}:00Z",
                "properties": {"product_id": item_id},
            }
        )
    return events


def check_item(shop: SampleShop, person: Person, item: DecidedItem, reason: Reason) -> None:
    """The claim of one of an item's reasons holds for that item and that person."""
    text, provenance = reason.text, reason.provenance
    known = shop.items[item.item_id]
    popularity = shop.bundle.popularity
    mine = popularity[shop.bundle.index[item.item_id]] if item.item_id in shop.bundle.index else None
    day = f"{datetime.fromisoformat(DAY).day} Feb 2011"
    if text.startswith("You told us you like "):
        liked = text.removeprefix("You told us you like ")
        assert liked in person.favourites and _within(known.category, liked), (text, known.category)
    elif text == "Popular with customers right now":
        assert mine is not None and mine >= np.sort(popularity)[-POPULAR_ITEMS], (item.item_id, mine)
    elif text.startswith("Among the best sellers in "):
        category = text.removeprefix("Among the best sellers in ")
        assert category in person.favourites and _within(known.category, category)
        peers = [
            popularity[i]
            for item_id, i in shop.bundle.index.items()
            if _within(shop.items[item_id].category, category)
        ]
        assert mine is not None and mine >= 1 and 1 + sum(p > mine for p in peers) <= POPULAR_ITEMS
    elif text.startswith("The shop's number "):
        assert mine is not None and mine >= 1
        assert text == f"The shop's number {1 + int((popularity > mine).sum())} best seller right now"
    elif text == "Shown to fill the list: few customers have bought it yet":
        assert mine is not None and mine < 1
    elif text.startswith(("Because you bought ", "Often bought in the order after ")):
        other = str(provenance["item_id"])
        assert other in person.bought, (text, person.bought)
        assert _title(shop, other) in text and day in text
        if text.startswith("Because you bought ") and provenance["signal"] == "repeat":
            assert other == item.item_id
    elif text.startswith("Because you looked at "):
        other = str(provenance["item_id"])
        assert other in person.viewed and other not in person.bought and _title(shop, other) in text
    elif text.startswith("In stock in your size "):
        size = text.removeprefix("In stock in your size ")
        assert size == person.size and size.lower() in known.sizes_in_stock
    elif text == "Picked for you from what you have bought":
        assert person.bought or person.viewed
    else:
        pytest.fail(f"a reason this test does not know how to check: {text!r}")


def check_decision(shop: SampleShop, person: Person, decision: Decision) -> None:
    """Every claim of the decision and of each item holds, and no rule is broken (the stated ones only
    when the person lets what they told us be used)."""
    consented = person.consented
    if not consented:
        person = Person([], [], None, [], [], [], person.placement, person.n, consented=False)
    shown = [shop.items[item.item_id] for item in decision.items]
    for reason in decision.reasons:
        text = reason.text
        if text.endswith("popular right now in the categories you told us you like"):
            assert person.favourites and all(
                any(_within(i.category, c) for c in person.favourites) for i in shown
            ), [i.category for i in shown]
        if text.startswith("Not personalized yet"):
            assert consented and not (person.bought or person.viewed)
            liked = [i for i in shown if any(_within(i.category, c) for c in person.favourites)]
            assert reason.provenance.get("in_categories", 0) == len(liked)
        if text.startswith("Ranked for you by"):
            assert consented and (person.bought or person.viewed)
        if text.startswith("Popular in the shop right now. You haven't agreed to personalization"):
            assert not consented
        if reason.provenance.get("rule") == "exclude_owned":  # "Left out N items you already bought"
            assert reason.provenance["count"] == len(person.bought) and decision.placement == "new_for_you"
    for item, known in zip(decision.items, shown, strict=True):
        assert not any(_within(known.category, c) for c in person.dislikes), (known.category, person.dislikes)
        assert item.item_id not in person.rejected
        if person.size is not None and known.sizes_in_stock and decision.items:
            sized = any(r.text.startswith("In stock in your size") for r in item.reasons)
            assert sized, (item.item_id, known.sizes_in_stock)
        for reason in item.reasons:
            check_item(shop, person, item, reason)
    if decision.placement == "new_for_you":
        assert not {item.item_id for item in decision.items} & set(person.bought)


MUGS = Person(["Mugs"], [], None, [], [], [], "web", 10)


@pytest.mark.parametrize("favourite", ["Mugs", "Cards"])
def test_a_stated_favourite_category_is_shown_first_and_the_reasons_say_so(
    sample: SampleShop, favourite: str
) -> None:
    # Cards: its best seller ranks about 210th in this shop, below 50 x n for n = 4.
    person = Person([favourite], [], None, [], [], [], "web", 4)
    user = f"cold-{favourite}"
    sample.shop.ingest(_events(user, person))
    decision = sample.shop.decide(user_id=user, placement="web", n=4)
    categories = [sample.items[item.item_id].category for item in decision.items]
    assert len(categories) == 4 and _within(categories[0], favourite), categories
    check_decision(sample, person, decision)


@given(drawn=PEOPLE)
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_every_reason_is_true_of_its_items(sample: SampleShop, drawn: Draw) -> None:
    person = drawn.person(sample)
    user = f"person-{next(sample.people)}"
    sample.shop.ingest(_events(user, person))
    if not person.consented:
        sample.shop.set_consent(user, {"personalization": False})
    decision = sample.shop.decide(user_id=user, placement=person.placement, n=person.n)
    check_decision(sample, person, decision)


def test_the_mugs_case(sample: SampleShop) -> None:
    """The issue's case: "Mugs" stated, nothing else known."""
    sample.shop.ingest(_events("mugs", MUGS))
    decision = sample.shop.decide(user_id="mugs", placement="web", n=10)
    check_decision(sample, MUGS, decision)
    assert any(r.provenance.get("in_categories") for r in decision.reasons)
