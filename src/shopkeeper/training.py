"""Training: the event log's interactions in, a versioned model bundle out, published in one insert.

A bundle holds the default recommender, item neighbours (for "because you bought X"), and the recent
popularity of every item (the non-personal baseline and the cold start). It holds no person's id or
history: people's signals are read from their own history at decide time, so erasing a person from the
event log erases them from what the model can say about them.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shopkeeper.errors import InvalidInput
from shopkeeper.recommend.base import FloatArray, Interactions, Recommender
from shopkeeper.recommend.explain import ItemNeighbours
from shopkeeper.recommend.orders import DistinctOrderLines, OrderEvents
from shopkeeper.store import Store
from shopkeeper.store.interactions import PURCHASE
from shopkeeper.store.models import ModelVersion

POPULARITY_DAYS = 30
DAY = 86400.0
Fit = Callable[[Interactions], Recommender]


def load_interactions(store: Store) -> Interactions:
    """Every purchase, cart and view in the store, one row per event and item (weight 1 each)."""
    rows = store.interactions.for_training()
    seen: set[tuple[int, str, str]] = set()
    people: dict[int, int] = {}
    items: dict[str, int] = {}
    user_idx, item_idx, times, kinds = [], [], [], []
    for person_id, item_id, kind, at, message_id in rows:
        if (person_id, item_id, message_id) in seen:  # one weight per order, however many lines
            continue
        seen.add((person_id, item_id, message_id))
        user_idx.append(people.setdefault(person_id, len(people)))
        item_idx.append(items.setdefault(item_id, len(items)))
        times.append(at.timestamp())
        kinds.append(kind)
    return Interactions(
        user_idx=np.asarray(user_idx, np.int64),
        item_idx=np.asarray(item_idx, np.int64),
        times=np.asarray(times, np.float64),
        weights=np.ones(len(user_idx)),
        kinds=np.asarray(kinds, np.int64),
        user_ids=[str(p) for p in people],
        item_ids=list(items),
    )


def store_orders(store: Store) -> OrderEvents:
    """The shop's own purchases as `shopkeeper evaluate` reads an order file: one row per person, item
    and order, people named by their internal number only (the report never needs who they are)."""
    lines = DistinctOrderLines()
    read = 0
    for person_id, item_id, message_id, at in store.interactions.purchases():
        read += 1
        lines.add(str(person_id), item_id, message_id, at.timestamp())
    return lines.events(rows_read=read, rows_kept=read)


def recent_popularity(data: Interactions, days: int = POPULARITY_DAYS) -> FloatArray:
    """Purchases per item over the last `days` of the data (all time, for a shop that has fewer)."""
    bought = data.kinds == PURCHASE
    recent = bought & (data.times >= data.end - days * DAY)
    chosen = recent if recent.sum() >= 50 else bought
    counts = np.bincount(data.item_idx[chosen], minlength=data.n_items).astype(np.float64)
    # Older sales break ties, so a tiny shop still gets an order.
    ties = np.bincount(data.item_idx[bought], minlength=data.n_items) / max(1, int(bought.sum()))
    result: FloatArray = counts + 1e-3 * ties
    return result


def train(store: Store, fit: Fit) -> ModelVersion:
    """Fit a model (the default: `shopkeeper.recommend.train_default`) on everything in the store and
    publish it, with the item neighbours and popularity, as a new version."""
    started = time.perf_counter()
    data = load_interactions(store)
    if not (data.kinds == PURCHASE).any():
        raise InvalidInput("nothing to learn from yet: no purchases in the store (try `import orders`)")
    loaded = time.perf_counter()
    model = fit(data)
    neighbours = ItemNeighbours().fit(data)
    popularity = recent_popularity(data)
    fitted = time.perf_counter()
    trained_until = datetime.fromtimestamp(data.end, UTC)
    summary = {
        "model": model.name,
        "people": data.n_users,
        "items": data.n_items,
        "interactions": len(data.user_idx),
        "purchases": int((data.kinds == PURCHASE).sum()),
        "trained_until": trained_until.isoformat(),
        "load_seconds": round(loaded - started, 3),
        "fit_seconds": round(fitted - loaded, 3),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model.save(root / "model")
        neighbours.save(root / "neighbours")
        np.savez(root / "popularity.npz", popularity=popularity)
        (root / "bundle.json").write_text(
            json.dumps({"item_ids": data.item_ids, "trained_until": trained_until.isoformat()})
        )
        published = store.models.publish(model.name, root, summary)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return published
