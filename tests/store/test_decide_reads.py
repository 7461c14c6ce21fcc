"""What decide reads and writes through the store, on SQLite and PostgreSQL: the decision log's write (and
its rule against outrunning an erasure), a person's history, the recently active, the erasures since a
point, and the catalog's stock and category rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert, select, update

from shopkeeper.catalog import parse_items
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.interactions import PURCHASE, VIEW
from shopkeeper.store.schema import audit_log, decisions, people

NOW = datetime(2026, 12, 8, 10, tzinfo=UTC)


def _person(store: Store, user_id: str) -> int:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [{"type": "identify", "userId": user_id, "messageId": f"id-{user_id}"}]
    )
    return store.person_summary(user_id).person_id


def _decision(person_id: int | None, at: datetime, context: str | None = None) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": person_id,
        "external_id": "someone",
        "placement": "web",
        "model_version": None,
        "personalized": 0,
        "items": "[]",
        "reasons": "[]",
        "at": at,
        "context": context,
    }


def test_decisions_are_stored_only_for_people_still_there(store: Store) -> None:
    ann = _person(store, "ann")
    with store.engine.begin() as conn:
        conn.execute(
            update(people).where(people.c.person_id == ann).values(created_at=NOW - timedelta(days=1))
        )
    rows = [
        _decision(None, NOW),  # an unknown visitor: always stored
        _decision(ann, NOW, '{"item_id": "mug"}'),
        _decision(ann, NOW - timedelta(days=2)),  # made before ann was: for someone who had her id
        _decision(ann + 1000, NOW),  # nobody: erased meanwhile
    ]
    assert store.decisions.store(rows) == 2
    with store.engine.connect() as conn:
        stored = {r.decision_id: r for r in conn.execute(select(decisions))}
    assert set(stored) == {rows[0]["decision_id"], rows[1]["decision_id"]}
    assert stored[rows[0]["decision_id"]].context is None
    assert orjson.loads(stored[rows[1]["decision_id"]].context) == {"item_id": "mug"}
    assert store.decisions.store([]) == 0


def _track(user: str, n: int, event: str, item: str, day: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": f"{user}-{n}",
        "timestamp": f"2011-05-{day:02d}T10:00:00Z",
        "properties": {"product_id": item},
    }


def test_history_and_the_recently_active(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            _track("ann", 1, "Product Viewed", "mug", 3),
            _track("ann", 2, "Order Completed", "bag", 1),
            _track("bob", 3, "Order Completed", "mug", 9),
            _track("cat", 4, "Product Viewed", "bag", 5),
        ]
    )
    ann = store.person_summary("ann").person_id
    history = [(r[0], r[1], r[2], r[3]) for r in store.serving.history(ann)]
    assert [(item, kind, message) for item, kind, _, message in history] == [
        ("bag", PURCHASE, "ann-2"),
        ("mug", VIEW, "ann-1"),
    ]
    assert history[0][2] == datetime(2011, 5, 1, 10, tzinfo=UTC)
    assert list(store.serving.history(ann + 1000)) == []
    order = [store.person_summary(user).person_id for user in ("bob", "cat", "ann")]
    assert store.serving.recently_active(10) == order
    assert store.serving.recently_active(2) == order[:2]


def test_erasures_after_a_point_of_the_audit_log(store: Store) -> None:
    assert store.serving.newest_audit_id() == 0

    def audit(action: str, person_id: int | None) -> None:
        with store.engine.begin() as conn:
            conn.execute(
                insert(audit_log),
                {"at": NOW, "actor": "tests", "action": action, "person_id": person_id, "detail": "{}"},
            )

    audit("export", 1)
    start = store.serving.newest_audit_id()
    assert start > 0 and store.serving.erasures_after(start) == []
    audit("erase", 7)
    audit("export", 8)
    audit("erase", None)
    found = store.serving.erasures_after(start)
    assert [person for _, person in found] == [7, None]
    assert all(audit_id > start for audit_id, _ in found)
    assert store.serving.erasures_after(max(audit_id for audit_id, _ in found)) == []


ITEMS = [
    {"item_id": "mug", "title": "RED MUG", "category": "Kitchen > Mugs"},
    {
        "item_id": "tee",
        "title": "Tee",
        "category": "Clothing > Tees",
        "variants": [
            {"variant_id": "tee-m", "attributes": {"size": "M"}, "stock": 0},
            {"variant_id": "tee-l", "attributes": {"size": "L"}, "stock": 4},
        ],
    },
    {"item_id": "odd", "title": "Odd", "category": "100%_off > Deals"},
    {"item_id": "lookalike", "title": "Lookalike", "category": "100xxoff > Deals"},
    {"item_id": "kitchenware", "title": "Kitchenware", "category": "Kitchenware"},
]


def test_stock_rows_for_the_rules(store: Store) -> None:
    store.catalog.upsert(parse_items(ITEMS))
    rows = sorted(store.catalog.stock(["mug", "tee", "nothing"]), key=lambda r: (r[0], str(r[3])))
    assert rows == [
        ("mug", "RED MUG", "Kitchen > Mugs", None, None),
        ("tee", "Tee", "Clothing > Tees", {"size": "L"}, 4),
        ("tee", "Tee", "Clothing > Tees", {"size": "M"}, 0),
    ]
    assert store.catalog.stock([]) == []


def test_items_in_a_category_and_under_it_whatever_the_case(store: Store) -> None:
    store.catalog.upsert(parse_items(ITEMS))
    assert sorted(store.catalog.in_category("kitchen")) == [("mug", "Kitchen > Mugs")]
    assert store.catalog.in_category(" KITCHEN > mugs ") == [("mug", "Kitchen > Mugs")]
    # `%` and `_` are the category's own characters, never wildcards
    assert store.catalog.in_category("100%_off") == [("odd", "100%_off > Deals")]
    assert store.catalog.in_category("nothing") == []
