"""Interactions: purchases, carts, views and returns, pulled out of ecommerce events as they are stored.

Training and `decide` read these compact rows instead of parsing event payloads. They are derived: the
event log stays the source of truth, and `rebuild_interactions` makes them again from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, delete, func, select

from shopkeeper.store.bulk import BulkInsert
from shopkeeper.store.schema import events, identities, interactions

PURCHASE, CART, VIEW, RETURN = 0, 1, 2, 3
KIND_OF_EVENT = {
    "order completed": PURCHASE,
    "product added": CART,
    "product viewed": VIEW,
    "order refunded": RETURN,
}
KIND_NAMES = {PURCHASE: "purchase", CART: "cart", VIEW: "view", RETURN: "return"}
_ABSENT = object()
# The person last: the append path binds the rest before it takes the write lock (see `BulkInsert.bind`).
INTERACTION_COLUMNS = ("item_id", "kind", "at", "quantity", "message_id", "person_id")
APPEND_INTERACTIONS = BulkInsert(interactions, INTERACTION_COLUMNS)


def append_interactions(conn: Connection, rows: Iterable[Sequence[Any]], *, bound: bool = False) -> int:
    """Append interaction rows (value tuples in INTERACTION_COLUMNS order) inside the caller's write
    transaction; `bound` as in `BulkInsert.execute`. The number inserted."""
    return APPEND_INTERACTIONS.execute(conn, rows, bound=bound)


# An interaction in `INTERACTION_COLUMNS` order, less the person.
Found = tuple[str, int, Any, float, str]


def interactions_of(payload: Mapping[str, Any], at: Any) -> list[Found]:
    """The interactions one stored message implies (none for most messages). `at`: its time, as given
    (the append path gives it bound for the driver)."""
    if payload.get("type") != "track":
        return []
    kind = KIND_OF_EVENT.get(str(payload.get("event", "")).lower())
    properties = payload.get("properties")
    if kind is None or not isinstance(properties, dict):
        return []
    products = properties.get("products")
    candidates = products if isinstance(products, list) else [properties]
    message_id = str(payload.get("messageId", ""))
    found: list[Found] = []
    for product in candidates:
        if not isinstance(product, dict):
            continue
        item_id = product.get("product_id", _ABSENT)
        if type(item_id) is not str:  # an int is taken as its digits; anything else is no item
            if item_id is _ABSENT:
                item_id = product.get("sku")
            if isinstance(item_id, bool) or not isinstance(item_id, str | int):
                continue
            item_id = str(item_id)
        if not item_id:
            continue
        quantity = product.get("quantity", 1)
        kind_of_quantity = type(quantity)
        if kind_of_quantity is int:  # the common case (a bool is not an int here: its type is bool)
            quantity = float(quantity)
        elif kind_of_quantity is not float:
            quantity = (
                float(quantity) if isinstance(quantity, int | float) and kind_of_quantity is not bool else 1.0
            )
        found.append((item_id[:255], kind, at, quantity, message_id))
    return found


def rebuild_interactions(conn: Connection, person_ids: Iterable[int] | None = None) -> int:
    """Make the interactions again from the event log (all, or these people's)."""
    query = select(events.c.person_id, events.c.payload, events.c.timestamp).where(events.c.type == "track")
    wipe = delete(interactions)
    if person_ids is not None:
        wanted = list(person_ids)
        query = query.where(events.c.person_id.in_(wanted))
        wipe = wipe.where(interactions.c.person_id.in_(wanted))
    conn.execute(wipe)
    rows = [
        (*found, person_id)
        for person_id, payload, at in conn.execute(query)
        for found in interactions_of(orjson.loads(payload), at)
    ]
    return APPEND_INTERACTIONS.execute(conn, rows)  # `at` as read, not bound: execute binds it


class SqlInteractions:
    """Reads the interactions for training, evaluation and the demo."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def for_training(self) -> list[tuple[int, str, int, datetime, str]]:
        """Every purchase, cart and view: (person_id, item_id, kind, at, message_id), one row per event
        and item."""
        query = select(
            interactions.c.person_id,
            interactions.c.item_id,
            interactions.c.kind,
            interactions.c.at,
            interactions.c.message_id,
        ).where(interactions.c.kind.in_((PURCHASE, CART, VIEW)))
        with self._engine.connect() as conn:
            return cast("list[tuple[int, str, int, datetime, str]]", conn.execute(query).all())

    def purchases(self) -> Iterator[tuple[int, str, str, datetime]]:
        """Every purchase as (person_id, item_id, message_id, at), oldest first."""
        query = (
            select(
                interactions.c.person_id, interactions.c.item_id, interactions.c.message_id, interactions.c.at
            )
            .where(interactions.c.kind == PURCHASE)
            .order_by(interactions.c.at, interactions.c.id)
        )
        with self._engine.connect() as conn:
            yield from cast("Iterator[tuple[int, str, str, datetime]]", conn.execute(query))

    def busiest_buyers(self, n: int) -> list[str]:
        """The userIds of the `n` people with the most orders, most first (ties by userId)."""
        orders = func.count(func.distinct(interactions.c.message_id))
        query = (
            select(identities.c.value, orders.label("orders"))
            .join(interactions, interactions.c.person_id == identities.c.person_id)
            .where(identities.c.kind == "user_id", interactions.c.kind == PURCHASE)
            .group_by(identities.c.value)
            .order_by(orders.desc(), identities.c.value)
            .limit(n)
        )
        with self._engine.connect() as conn:
            return [row.value for row in conn.execute(query)]
