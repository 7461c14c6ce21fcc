"""Interactions: purchases, carts, views and returns, pulled out of ecommerce events as they are stored.

Training and `decide` read these compact rows instead of parsing event payloads. They are derived: the
event log stays the source of truth, and `rebuild_interactions` makes them again from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from shopkeeper.store.schema import events, interactions

PURCHASE, CART, VIEW, RETURN = 0, 1, 2, 3
KIND_OF_EVENT = {
    "order completed": PURCHASE,
    "product added": CART,
    "product viewed": VIEW,
    "order refunded": RETURN,
}
KIND_NAMES = {PURCHASE: "purchase", CART: "cart", VIEW: "view", RETURN: "return"}


def interaction_rows(person_id: int, payload: Mapping[str, Any], at: datetime) -> list[dict[str, Any]]:
    """The interactions one stored message implies (none for most messages)."""
    if payload.get("type") != "track":
        return []
    kind = KIND_OF_EVENT.get(str(payload.get("event", "")).lower())
    properties = payload.get("properties")
    if kind is None or not isinstance(properties, dict):
        return []
    products = properties.get("products")
    candidates = products if isinstance(products, list) else [properties]
    rows = []
    for product in candidates:
        if not isinstance(product, dict):
            continue
        item_id = product.get("product_id", product.get("sku"))
        if isinstance(item_id, bool) or not isinstance(item_id, str | int) or str(item_id) == "":
            continue
        quantity = product.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float):
            quantity = 1
        rows.append(
            {
                "person_id": person_id,
                "item_id": str(item_id)[:255],
                "kind": kind,
                "at": at,
                "quantity": float(quantity),
                "message_id": str(payload.get("messageId", "")),
            }
        )
    return rows


def record_interactions(conn: Connection, event_rows: Sequence[Mapping[str, Any]]) -> int:
    """Add the interactions of freshly appended events rows (with `person_id`, `payload`, `timestamp`)."""
    found: list[dict[str, Any]] = []
    for row in event_rows:
        if row.get("type") != "track" or str(row.get("event", "")).lower() not in KIND_OF_EVENT:
            continue
        payload = row.get("parsed") or orjson.loads(row["payload"])  # ingestion passes the dict it has
        found += interaction_rows(row["person_id"], payload, row["timestamp"])
    for start in range(0, len(found), 5000):
        conn.execute(insert(interactions), found[start : start + 5000])
    return len(found)


def rebuild_interactions(conn: Connection, person_ids: Iterable[int] | None = None) -> int:
    """Make the interactions again from the event log (all, or these people's)."""
    query = select(events.c.person_id, events.c.type, events.c.event, events.c.payload, events.c.timestamp)
    wipe = delete(interactions)
    if person_ids is not None:
        wanted = list(person_ids)
        query = query.where(events.c.person_id.in_(wanted))
        wipe = wipe.where(interactions.c.person_id.in_(wanted))
    conn.execute(wipe)
    rows = [dict(r._mapping) for r in conn.execute(query.where(events.c.type == "track"))]
    return record_interactions(conn, rows)
