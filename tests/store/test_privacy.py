"""A person's rows across the store, on SQLite and PostgreSQL: the audit log, what an export reads, an
erasure's deletes (in the caller's transaction: all or nothing) and the purge of old rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, insert, select

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.consents import SqlConsents
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import audit_log, decisions, events, people, profile_dirty

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def decision(person_id: int | None, external_id: str, at: datetime) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": person_id,
        "external_id": external_id,
        "placement": "web",
        "model_version": None,
        "personalized": 1,
        "items": orjson.dumps([{"item_id": "mug"}]).decode(),
        "reasons": orjson.dumps([]).decode(),
        "at": at,
    }


def order(user: str, n: int, day: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"{user}-{n}",
        "timestamp": (T0 + timedelta(days=day)).isoformat(),
        "properties": {"products": [{"product_id": "mug"}]},
    }


@pytest.fixture
def two_people(store: Store) -> tuple[int, int]:
    """ann, who was shown a page before she was known (as anon-1), and bob."""
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            {"type": "identify", "userId": "ann", "anonymousId": "anon-1", "messageId": "a0"},
            order("ann", 1, 0),
            order("ann", 2, 40),
            order("bob", 1, 0),
        ]
    )
    ann, bob = store.identities.find_person("ann"), store.identities.find_person("bob")
    assert ann is not None and bob is not None
    with write_transaction(store.engine) as conn:
        conn.execute(
            insert(decisions),
            [
                decision(None, "anon-1", T0),
                decision(ann, "ann", T0 + timedelta(hours=1)),
                decision(bob, "bob", T0),
            ],
        )
        SqlConsents.append(conn, ann, {"analytics": True}, at=T0, channel="api", actor="test")
    return ann, bob


def test_an_audit_entry_names_the_person_by_number_only(store: Store) -> None:
    with write_transaction(store.engine) as conn:
        store.privacy.audit(conn, "admin key sk_admin_" + "x" * 80, "erase", 7, {"events": 3})
    with store.engine.connect() as conn:
        row = conn.execute(select(audit_log)).one()
    assert (row.actor, row.action, row.person_id, orjson.loads(row.detail)) == (
        ("admin key sk_admin_" + "x" * 80)[:64],
        "erase",
        7,
        {"events": 3},
    )


def test_decisions_shown_to_a_person_and_to_their_ids_before_they_were_known(
    store: Store, two_people: tuple[int, int]
) -> None:
    ann, _ = two_people
    with store.engine.connect() as conn:
        shown = store.privacy.decisions_of(conn, [ann], ["ann", "anon-1"])
        by_person_only = store.privacy.decisions_of(conn, [ann], [])
    assert [(d["at"], d["placement"], d["personalized"], d["items"]) for d in shown] == [
        (T0, "web", True, [{"item_id": "mug"}]),
        (T0 + timedelta(hours=1), "web", True, [{"item_id": "mug"}]),
    ]
    assert [d["at"] for d in by_person_only] == [T0 + timedelta(hours=1)]


def test_an_erasure_deletes_everywhere_in_the_callers_transaction(
    store: Store, two_people: tuple[int, int]
) -> None:
    ann, _ = two_people
    external = [value for _, value in store.identities.external_ids([ann])]

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), write_transaction(store.engine) as conn:
        store.privacy.erase(conn, [ann], external)
        raise Abandoned  # rolled back: nothing was erased
    assert store.identities.find_person("ann") == ann

    with write_transaction(store.engine) as conn:
        counts = store.privacy.erase(conn, [ann], external)
        assert store.models.latest_version(conn) is None
    assert counts == {
        "events": 3,
        "interactions": 2,
        "traits": 0,
        "decisions": 2,
        "consents": 1,
        "rejected_guesses": 0,
        "identities": 2,
        "merges": 0,
    }
    assert store.identities.find_person("ann") is None
    assert store.identities.find_person("anon-1") is None
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(people).where(people.c.person_id == ann)) == 0
        assert conn.scalar(select(func.count()).select_from(decisions)) == 1
    assert store.person_summary("bob").event_count == 1
    store.privacy.scrub()  # SQLite folds the write-ahead log in; PostgreSQL has nothing to do


def test_a_purge_deletes_what_is_old_and_marks_its_people_for_a_rebuild(
    store: Store, two_people: tuple[int, int]
) -> None:
    ann, bob = two_people
    with write_transaction(store.engine) as conn:
        store.traits.replace_event_traits(conn, {ann: [], bob: []})
        counts = store.privacy.purge(conn, T0 + timedelta(days=10), T0)
    assert counts == {
        "events": 2,  # the first orders of ann and bob; ann's identify is timestamped now
        "interactions": 2,
        "decisions": 3,
        "inferred_traits": 0,
        "people_to_rebuild": 2,
    }
    with store.engine.connect() as conn:
        assert sorted(conn.scalars(select(profile_dirty.c.person_id))) == sorted([ann, bob])
        assert conn.scalar(select(func.count()).select_from(events)) == 2
    with write_transaction(store.engine) as conn:
        again = store.privacy.purge(conn, T0 + timedelta(days=10), T0)
    assert again == dict.fromkeys(counts, 0)


def test_the_latest_model_version_on_a_connection_or_its_own(store: Store, tmp_path: Path) -> None:
    assert store.models.latest_version() is None
    (tmp_path / "model.json").write_text("{}")
    published = store.models.publish("popularity", tmp_path, {})
    with store.engine.connect() as conn:
        assert store.models.latest_version(conn) == published.version == store.models.latest_version()
