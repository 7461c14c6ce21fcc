"""Shared by the privacy tests: a person with a history, and every text a store holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Text, select

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.schema import metadata

PERSON = "zelda-7f3a9"
ANON = "anon-zelda-41c2"
EMAIL = "zelda.quinonez@example.org"
OTHER = "otto-55b1e"


def orders(user: str, n: int, *, category: str = "Mugs", start_day: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "messageId": f"{user}-order-{start_day + k}",
            "timestamp": f"2026-03-{start_day + k:02d}T10:00:00Z",
            "properties": {
                "order_id": f"{user}-{start_day + k}",
                "revenue": 12.5,
                "currency": "GBP",
                "products": [
                    {"product_id": f"item-{k % 3}", "category": category, "price": 12.5, "quantity": 1}
                ],
            },
        }
        for k in range(n)
    ]


def seed(store: Store) -> Ingestor:
    """PERSON browsed anonymously, then signed up with an email and bought mugs; OTHER bought too."""
    ingestor = Ingestor(store, record_consent=consent_recorder())
    ingestor.ingest(
        [
            {"type": "page", "anonymousId": ANON, "messageId": "z-page", "timestamp": "2026-02-28T09:00:00Z"},
            {
                "type": "identify",
                "userId": PERSON,
                "anonymousId": ANON,
                "messageId": "z-identify",
                "timestamp": "2026-02-28T09:05:00Z",
                "traits": {"email": EMAIL, "first_name": "Zelda"},
            },
            *orders(PERSON, 4),
            *orders(OTHER, 2, category="Bags"),
        ]
    )
    return ingestor


def every_text(store: Store) -> str:
    """Every string and blob value in every table, joined: what a search of the database would see."""
    found: list[str] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, str):
                        found.append(value)
                    elif isinstance(value, bytes | memoryview):
                        found.append(bytes(value).decode("latin-1"))
    assert any(isinstance(c.type, String | Text) for c in metadata.tables["events"].columns)
    return "\n".join(found)
