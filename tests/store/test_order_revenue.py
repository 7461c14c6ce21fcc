"""Each order's revenue is kept on its event at append, filled in by the migration for orders stored
before, and read back by the reports without parsing payloads (a row left empty is still parsed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import select, update

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.engine import alembic_config
from shopkeeper.store.event_log import order_revenue
from shopkeeper.store.schema import events

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _order(message: str, properties: dict[str, object]) -> dict[str, object]:
    at = (NOW - timedelta(days=1)).isoformat()
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": message,
            "timestamp": at, "properties": properties}  # fmt: skip


ORDERS = [
    _order("o1", {"revenue": 12.5, "total": 99}),
    _order("o2", {"total": 7}),
    _order("o3", {"products": [{"price": 2.5, "quantity": 2}, {"price": 1.0}, {"price": "x"}]}),
    _order("o4", {"revenue": True, "products": "none"}),
]


def _kept(store: Store) -> dict[str, float | None]:
    with store.engine.connect() as conn:
        return {m: r for m, r in conn.execute(select(events.c.message_id, events.c.revenue))}


def test_an_orders_revenue_is_kept_at_append_and_other_events_keep_none(database_url: str) -> None:
    store = Store.open(database_url)
    view = {"type": "track", "event": "Product Viewed", "userId": "u1", "messageId": "v1",
            "properties": {"revenue": 5}}  # fmt: skip
    Ingestor(store, record_consent=consent_recorder()).ingest([*ORDERS, view])
    assert _kept(store) == {"o1": 12.5, "o2": 7.0, "o3": 6.0, "o4": 0.0, "v1": None}
    assert [order_revenue(o) for o in ORDERS] == [12.5, 7.0, 6.0, 0.0]
    outcomes = store.experiments.outcomes(NOW - timedelta(days=30), NOW, ())
    assert sorted(outcomes.revenue.tolist()) == [0.0, 6.0, 7.0, 12.5]
    with store.engine.begin() as conn:  # as written before revenue was kept: read from the payload
        conn.execute(update(events).values(revenue=None))
    outcomes = store.experiments.outcomes(NOW - timedelta(days=30), NOW, ())
    assert sorted(outcomes.revenue.tolist()) == [0.0, 6.0, 7.0, 12.5]
    store.close()


def test_the_migration_fills_in_the_orders_stored_before(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    Ingestor(store, record_consent=consent_recorder()).ingest(ORDERS)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0014")
    store.close()
    again = Store.open(sqlite_url)  # brought up to date, the orders filled in
    assert _kept(again) == {"o1": 12.5, "o2": 7.0, "o3": 6.0, "o4": 0.0}
    again.close()
