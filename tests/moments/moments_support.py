"""What the tests of wishes, triggers and rules share: a shop on a backend, a trousers catalog, a person.

The shop has no quiet hours and no holdout unless a test says so (they are `test_respect`'s subject, not
these tests'), and its moment engine has placed its cursors at the end of the (empty) log, so that it
sees every event and catalog change a test makes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from shopkeeper.catalog.items import parse_items
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store.outbox import OutboxRow

SIZES = ("32", "33", "34", "35", "36")
COLOURS = ("grey", "blue")
CATEGORY = "Clothing > Trousers"
PRICE = 120.0


@contextmanager
def open_shop(url: str, **settings: Any) -> Iterator[Shop]:
    """A shop at `url` whose engine has placed its cursors (see the module docstring)."""
    chosen: dict[str, Any] = {"quiet_hours": "", "holdout_share": 0, **settings}
    shop = Shop.from_settings(Settings(database_url=url, **chosen))
    try:
        shop.moments.engine.step()
        yield shop
    finally:
        shop.close()


class Trousers:
    """Grey and blue wool trousers, in sizes 32 to 36, five of each unless a test sets the stock.

    Once made, the engine steps past the catalog's creation (new variants count as stock that came
    back). `set` changes one variant's stock (or price) and upserts the item, so that the catalog's
    history records the change at `at`."""

    def __init__(self, shop: Shop, *, out: tuple[tuple[str, str], ...] = (("grey", "34"),)) -> None:
        self.shop = shop
        self.stock: dict[str, dict[str, int | None]] = {c: dict.fromkeys(SIZES, 5) for c in COLOURS}
        self.price: dict[str, float | None] = dict.fromkeys(COLOURS, PRICE)
        self.variant_price: dict[str, dict[str, float | None]] = {c: dict.fromkeys(SIZES) for c in COLOURS}
        for colour, size in out:
            self.stock[colour][size] = 0
        self.upsert(*COLOURS)
        shop.moments.engine.step()

    def item(self, colour: str) -> dict[str, Any]:
        return {
            "item_id": f"trousers-{colour}",
            "title": f"{colour.title()} wool trousers",
            "category": CATEGORY,
            "price": self.price[colour],
            "currency": "GBP",
            "attributes": {"colour": colour, "brand": "Fenwick"},
            "variants": [
                {
                    "variant_id": f"{colour}-{size}",
                    "attributes": {"size": size, "colour": colour},
                    "stock": self.stock[colour][size],
                    "price": self.variant_price[colour][size],
                }
                for size in SIZES
            ],
        }

    def upsert(self, *colours: str, at: datetime | None = None) -> None:
        self.shop.store.catalog.upsert(parse_items([self.item(c) for c in colours]), now=at)

    def set(self, colour: str, size: str, stock: int, *, at: datetime | None = None) -> None:
        self.stock[colour][size] = stock
        self.upsert(colour, at=at)

    def set_price(
        self, colour: str, price: float, *, size: str | None = None, at: datetime | None = None
    ) -> None:
        if size is None:
            self.price[colour] = price
        else:
            self.variant_price[colour][size] = price
        self.upsert(colour, at=at)


def person(shop: Shop, user_id: str, stated: dict[str, Any] | None = None, **traits: Any) -> int:
    """A known person with an email address (and these stated preferences): their person id."""
    shop.identify(user_id=user_id, traits={"email": f"{user_id}@example.com", **traits})
    if stated:
        shop.state_preferences(user_id, stated)
    return shop.privacy.find(user_id)


def view(
    shop: Shop, user_id: str, product: dict[str, Any], *, event: str = "Product Viewed", **fields: Any
) -> None:
    shop.track(event, user_id=user_id, properties=product, **fields)


def order(
    shop: Shop, user_id: str, order_id: str, *items: str, revenue: float = PRICE, **fields: Any
) -> None:
    """An `Order Completed` of these items (`trousers-blue`, ...), one of each."""
    products = [{"product_id": i, "quantity": 1, "price": revenue / len(items)} for i in items]
    shop.track(
        "Order Completed",
        user_id=user_id,
        properties={"order_id": order_id, "revenue": revenue, "products": products},
        **fields,
    )


def wishes(shop: Shop, user_id: str) -> list[dict[str, Any]]:
    """The person's wishes as `add_wish` answers them: the listing adds the item's title and variant."""
    return [
        {k: v for k, v in w.items() if k not in ("title", "variant")}
        for w in shop.moments.wishes(user_id)["items"]
    ]


def messages(shop: Shop, user_id: str | None = None, *, rule: str | None = None) -> list[OutboxRow]:
    """The outbox (of one person, of one rule), oldest first."""
    people = None if user_id is None else [shop.privacy.find(user_id)]
    return list(reversed(shop.store.outbox.messages(person_ids=people, rule=rule, limit=1000)))


def outcomes(rows: list[OutboxRow]) -> list[tuple[str, str, str | None]]:
    """Each row as (rule, status, reason), oldest first: what most assertions compare."""
    return [(r.rule, r.status, r.reason) for r in rows]


def iso(at: datetime) -> str:
    return at.isoformat()
