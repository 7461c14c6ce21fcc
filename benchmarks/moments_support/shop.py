"""The simulated shop of benchmarks/moments.py (its docstring says what is made up): sized linen shirts,
people with an email who wish for a size, and the engine caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopkeeper.catalog.items import MAX_ITEMS_PER_BATCH, parse_items
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

SIZES = ("XS", "S", "M", "L", "XL")
WISHED_SIZE = "M"
NAMES = ("Anna", "JOHN", "José", "O'Brien", "Jean-Luc", "siobhan", "محمد", "Lester Wunderman")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def settings_for(folder: Path, **extra: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{folder / 'bench.db'}", quiet_hours="", holdout_share=0, **extra)


def shirt(n: int, prefix: str, stock: Callable[[str], int]) -> dict[str, Any]:
    item_id = f"{prefix}{n}"
    return {
        "item_id": item_id,
        "title": f"Linen shirt {prefix.upper()}{n}",
        "category": "Clothing > Shirts",
        "price": 45.0,
        "currency": "GBP",
        "attributes": {"url": f"https://shop.example/items/{item_id}"},
        "variants": [
            {"variant_id": f"{item_id}-{s}", "attributes": {"size": s}, "stock": stock(s)} for s in SIZES
        ],
    }


def upsert(shop: Shop, raw: list[dict[str, Any]]) -> float:
    """Upsert `raw` items in one transaction (parsed beforehand); the seconds the upsert took."""
    parsed = []
    for start in range(0, len(raw), MAX_ITEMS_PER_BATCH):
        parsed += parse_items(raw[start : start + MAX_ITEMS_PER_BATCH])
    started = time.perf_counter()
    shop.store.catalog.upsert(parsed)
    return time.perf_counter() - started


def add_wishers(shop: Shop, prefix: str, people: int, wished: list[str], *, sized: bool = False) -> None:
    """`people` people with an email, each wishing for the wished size of one of `wished` (in turn), as
    the engine records wishes: from their `Back In Stock Requested` events. `sized`: each has stated
    that size too, with the event the preference centre writes (the email template says it)."""
    for start in range(0, people, 500):
        batch: list[dict[str, Any]] = []
        for p in range(start, min(people, start + 500)):
            user, item_id = f"{prefix}{p}", wished[p % len(wished)]
            traits = {"email": f"{user}@example.com", "firstName": NAMES[p % len(NAMES)]}
            batch.append({"type": "identify", "userId": user, "traits": traits})
            if sized:
                batch.append(
                    {
                        "type": "identify",
                        "userId": user,
                        "traits": {"size": WISHED_SIZE},
                        "context": {"shopkeeper": {"stated": True, "channel": "benchmark"}},
                    }
                )
            batch.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Back In Stock Requested",
                    "properties": {"product_id": item_id, "variant_id": f"{item_id}-{WISHED_SIZE}"},
                }
            )
        shop.ingest(batch)
    catch_up(shop)


def catch_up(shop: Shop) -> list[float]:
    """engine.step() until it finds nothing new; each step's seconds."""
    steps: list[float] = []
    while True:
        started = time.perf_counter()
        if not shop.moments.engine.step().busy:
            return steps
        steps.append(time.perf_counter() - started)


def outbox_counts(shop: Shop) -> dict[str, int]:
    found: dict[str, int] = {}
    for (_rule, status, reason), n in shop.store.outbox.counts().items():
        key = f"{status} ({reason})" if reason else status
        found[key] = found.get(key, 0) + n
    return found
