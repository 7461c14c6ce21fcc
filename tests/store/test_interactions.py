"""Reads of the interactions, on SQLite and PostgreSQL: what training, evaluation and the demo read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.interactions import CART, PURCHASE, VIEW, rebuild_interactions
from shopkeeper.store.schema import interactions


def track(user: str, event: str, n: int, day: int, *items: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": f"{user}-{n}",
        "timestamp": f"2026-03-{day:02d}T10:00:00Z",
        "properties": {"products": [{"product_id": i} for i in items]},
    }


def test_training_evaluation_and_the_demo_read_the_interactions(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            track("ann", "Order Completed", 1, 3, "mug", "bag"),
            track("ann", "Order Completed", 2, 1, "mug"),
            track("bob", "Order Completed", 1, 2, "bag"),
            track("bob", "Product Added", 2, 4, "mug"),
            track("bob", "Product Viewed", 3, 5, "lamp"),
            track("cat", "Order Completed", 1, 6, "lamp"),
            track("cat", "Order Completed", 2, 7, "lamp"),
            track("cat", "Order Refunded", 3, 8, "lamp"),
        ]
    )
    ann, bob, cat = (store.identities.find_person(u) for u in ("ann", "bob", "cat"))

    rows = store.interactions.for_training()
    assert sorted((p, item, kind, message) for p, item, kind, _, message in rows) == sorted(
        [
            (ann, "mug", PURCHASE, "ann-1"),
            (ann, "bag", PURCHASE, "ann-1"),
            (ann, "mug", PURCHASE, "ann-2"),
            (bob, "bag", PURCHASE, "bob-1"),
            (bob, "mug", CART, "bob-2"),
            (bob, "lamp", VIEW, "bob-3"),
            (cat, "lamp", PURCHASE, "cat-1"),
            (cat, "lamp", PURCHASE, "cat-2"),
        ]
    )  # the refund is no training signal

    bought = [(p, item, message, at.day) for p, item, message, at in store.interactions.purchases()]
    assert bought[:2] == [(ann, "mug", "ann-2", 1), (bob, "bag", "bob-1", 2)]  # oldest first
    assert sorted(bought[2:4]) == sorted([(ann, "mug", "ann-1", 3), (ann, "bag", "ann-1", 3)])
    assert bought[4:] == [(cat, "lamp", "cat-1", 6), (cat, "lamp", "cat-2", 7)]

    assert store.interactions.busiest_buyers(3) == ["ann", "cat", "bob"]  # two orders each, then by id
    assert store.interactions.busiest_buyers(1) == ["ann"]


def test_the_interactions_are_rebuilt_from_the_event_log_alike(store: Store) -> None:
    """They are derived: `rebuild_interactions` makes them again from the events, all of them or one
    person's, and gets what the append path wrote (one time per event, quantities, the refund)."""
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            track("ann", "Order Completed", 1, 3, "mug", "bag"),
            track("bob", "Product Added", 2, 4, "mug"),
            track("bob", "Product Viewed", 3, 5, "lamp"),
            track("cat", "Order Refunded", 3, 8, "lamp"),
        ]
    )
    query = select(
        interactions.c.person_id,
        interactions.c.item_id,
        interactions.c.kind,
        interactions.c.at,
        interactions.c.quantity,
        interactions.c.message_id,
    )

    def stored() -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return sorted(tuple(row) for row in conn.execute(query))

    appended = stored()
    assert len(appended) == 5
    bob = store.identities.find_person("bob")
    assert bob is not None
    with store.engine.begin() as conn:
        conn.execute(delete(interactions))
        assert rebuild_interactions(conn, [bob]) == 2
    assert [row[0] for row in stored()] == [bob, bob]
    with store.engine.begin() as conn:
        assert rebuild_interactions(conn) == 5
    assert stored() == appended
