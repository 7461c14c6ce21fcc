"""Trait rows' contract, on SQLite and PostgreSQL: some of a person's traits with their rebuild mark in
one read, and rejected guesses, which stay with the person someone was merged into."""

from __future__ import annotations

from datetime import UTC, datetime

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.traits import TraitRecord, mark_dirty

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def guess(key: str, value: object) -> TraitRecord:
    return TraitRecord(key=key, value=value, source="inferred", updated_at=T0, evidence={"events": ["m1"]})


def test_some_traits_and_the_rebuild_mark_in_one_read(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [{"type": "identify", "userId": "u1", "messageId": "m1"}]
    )
    person = store.identities.find_person("u1")
    assert person is not None
    with write_transaction(store.engine) as conn:
        store.traits.replace_event_traits(conn, {person: []})  # clears the mark the identify left
        store.traits.write_inferred(
            conn, person, [guess("size", "M"), guess("favourite_categories", ["Mugs"])]
        )
    with store.engine.connect() as conn:
        records, dirty = store.traits.some_and_dirty(conn, person, ["size", "colour"])
        none, _ = store.traits.some_and_dirty(conn, person, ["colour"])
    assert (dirty, [(r.key, r.value, r.source) for r in records]) == (False, [("size", "M", "inferred")])
    assert records[0].updated_at == T0 and records[0].evidence == {"events": ["m1"]}
    assert none == []
    with write_transaction(store.engine) as conn:
        mark_dirty(conn, [person])
    with store.engine.connect() as conn:
        records, dirty = store.traits.some_and_dirty(conn, person, ["size"])
    assert dirty and [r.key for r in records] == ["size"]


def test_a_rejection_marks_a_rebuild_and_stays_with_the_person_merged_into(store: Store) -> None:
    ingest = Ingestor(store, record_consent=consent_recorder()).ingest
    ingest([{"type": "page", "anonymousId": "anon-1", "messageId": "m1"}])
    ingest([{"type": "identify", "userId": "u1", "messageId": "m2"}])
    anon, person = store.identities.find_person("anon-1"), store.identities.find_person("u1")
    assert anon is not None and person is not None
    with write_transaction(store.engine) as conn:
        store.traits.replace_event_traits(conn, {anon: [], person: []})
        store.traits.add_rejection(conn, anon, "favourite_categories", "Mugs", ["m1"], T0)
        store.traits.add_rejection(conn, person, "size", None, [], T0)
    with store.engine.connect() as conn:
        assert store.traits.dirty(conn) == sorted([anon, person])
    ingest([{"type": "identify", "anonymousId": "anon-1", "userId": "u1", "messageId": "m3"}])
    with store.engine.connect() as conn:
        rows = store.traits.rejections(conn, [person])
        assert store.traits.rejections(conn, [person + 1000]) == []
    found = sorted((r.owner, r.key, r.value, r.evidence, r.at) for r in rows)
    assert found == [
        (person, "favourite_categories", '"Mugs"', '["m1"]', T0),
        (person, "size", None, "[]", T0),
    ]
