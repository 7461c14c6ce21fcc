"""A small shop whose customers' groups are known, for the persona and audience service tests.

Four kinds of customer, each with orders at known days before now:
- `regular-*` (12): an order every 10 days for 60 days, Party items, £40 each;
- `bigspender-*` (6): four orders in the last 30 days, £400 each, Candles;
- `newbie-*` (10): one order 3 days ago, £15, Bags;
- `lapsed-*` (12): one order 300+ days ago, £20, Mugs;
and `browser-*` (5): views only, no orders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shopkeeper.catalog.items import parse_items
from shopkeeper.events.importers import import_orders, open_sample
from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.shop import Shop
from shopkeeper.store import Store

NOW = datetime.now(UTC)
KINDS = {"regular": 12, "bigspender": 6, "newbie": 10, "lapsed": 12}
CATEGORIES = {"regular": "Party > Balloons", "bigspender": "Candles", "newbie": "Bags", "lapsed": "Mugs"}


def _order(user: str, n: int, days_ago: float, price: float, category: str) -> dict[str, Any]:
    item = f"{category.split(' > ', maxsplit=1)[0].lower()}-{n % 2}"
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"{user}-order-{n}",
        "timestamp": (NOW - timedelta(days=days_ago)).isoformat(),
        "properties": {
            "order_id": f"{user}-{n}",
            "revenue": price,
            "currency": "GBP",
            "products": [{"product_id": item, "category": category, "price": price, "quantity": 1}],
        },
    }


def orders_of(kind: str, user: str) -> list[dict[str, Any]]:
    category = CATEGORIES[kind]
    if kind == "regular":
        return [_order(user, n, 5 + 10 * n, 40.0, category) for n in range(6)]
    if kind == "bigspender":
        return [_order(user, n, 2 + 7 * n, 400.0, category) for n in range(4)]
    if kind == "newbie":
        return [_order(user, 0, 3, 15.0, category)]
    return [_order(user, 0, 300 + int(user.split("-")[1]), 20.0, category)]


def build(shop: Shop) -> dict[str, list[str]]:
    """Fill the shop; returns the user ids of each kind."""
    items = [
        {"item_id": f"{c.split(' > ')[0].lower()}-{k}", "title": f"{c} {k}", "category": c, "price": 10.0}
        for c in CATEGORIES.values()
        for k in range(2)
    ]
    shop.store.catalog.upsert(parse_items(items))
    people: dict[str, list[str]] = {}
    messages: list[dict[str, Any]] = []
    for kind, count in KINDS.items():
        people[kind] = [f"{kind}-{i}" for i in range(count)]
        for user in people[kind]:
            messages += orders_of(kind, user)
    people["browser"] = [f"browser-{i}" for i in range(5)]
    for user in people["browser"]:
        messages.append(
            {
                "type": "track",
                "userId": user,
                "event": "Product Viewed",
                "messageId": f"{user}-view",
                "timestamp": (NOW - timedelta(days=1)).isoformat(),
                "properties": {"product_id": "bags-0"},
            }
        )
    shop.ingestor.ingest(messages)
    shop.profiles.builder.rebuild_all()
    return people


# The contract of `shopkeeper personas discover --json` (issue 16), for the HTTP and CLI tests.
PERSONA_KEYS = {
    "id",
    "name",
    "rule",
    "rule_agreement",
    "size",
    "share_customers",
    "share_revenue",
    "description",
    "top_categories",
}
RFM_NAMES = {"Champions", "Loyal customers", "New customers", "At risk", "Lapsed customers"}


def import_sample(path: Path) -> Path:
    """The bundled sample at `path`, replayed to end today, with its profiles built."""
    store = Store.open(f"sqlite:///{path}")
    try:
        with open_sample() as source:
            import_orders(store, source, replay_until=datetime.now(UTC))
        ProfileBuilder(store).refresh_dirty()
    finally:
        store.close()
    return path
