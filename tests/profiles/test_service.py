"""Profiles end to end on both backends: events in, resolved traits with provenance out."""

from __future__ import annotations

from datetime import UTC, datetime

from shopkeeper.catalog import parse_items
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.profiles.service import ProfileService
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.traits import SqlTraits, TraitRecord


def test_the_airline_case_end_to_end(store: Store) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    ingestor.ingest(
        [
            {
                "type": "page",
                "userId": "traveller",
                "messageId": "m1",
                "timestamp": "2026-05-01T10:00:00Z",
                "context": {"locale": "de-DE"},
            }
        ]
    )
    person_id = store.person_summary("traveller").person_id
    with write_transaction(store.engine) as conn:
        SqlTraits(store.engine).write_inferred(
            conn,
            person_id,
            [
                TraitRecord(
                    "language",
                    "de",
                    "inferred",
                    datetime(2026, 5, 1, tzinfo=UTC),
                    {"model": "geoip"},
                    confidence=0.9,
                ),
            ],
        )
    profiles = ProfileService(store)
    assert profiles.get("traveller").traits["language"].value == "de"

    # The person clicks the Union Jack: a stated answer, sent as an identify marked stated.
    ingestor.ingest(
        [
            {
                "type": "identify",
                "userId": "traveller",
                "messageId": "m2",
                "timestamp": "2026-05-01T10:05:00Z",
                "traits": {"language": "en"},
                "context": {"shopkeeper": {"stated": True}, "locale": "de-DE"},
            }
        ]
    )
    profile = profiles.get("traveller")
    language = profile.traits["language"]
    assert (language.value, language.source) == ("en", "stated")
    assert {(c.record.source, c.record.value) for c in language.considered} == {
        ("observed", "de"),
        ("inferred", "de"),
    }
    as_json = {t["key"]: t for t in profile.to_json()["traits"]}  # type: ignore[union-attr]
    assert as_json["language"]["value"] == "en"
    assert as_json["language"]["evidence"]["events"] == ["m2"]


def test_reads_see_writes_without_a_rebuild(store: Store) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    profiles = ProfileService(store)
    order = {
        "type": "track",
        "userId": "17850",
        "event": "Order Completed",
        "properties": {"order_id": "1", "revenue": 15.3, "products": [{"product_id": "85123A"}]},
    }
    ingestor.ingest([{**order, "messageId": "o1"}])
    assert profiles.get("17850").traits["order_count"].value == 1
    ingestor.ingest([{**order, "messageId": "o2", "properties": {**order["properties"], "order_id": "2"}}])
    assert profiles.get("17850").traits["order_count"].value == 2
    assert profiles.get("17850").traits["revenue"].value == 30.6


def test_favourites_use_the_catalog_categories(store: Store) -> None:
    store.catalog.upsert(
        parse_items(
            [
                {
                    "item_id": "85123A",
                    "title": "WHITE HANGING HEART T-LIGHT HOLDER",
                    "category": "Candles > Holders",
                    "attributes": {"colour": "white"},
                },
            ]
        )
    )
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            {
                "type": "track",
                "userId": "u",
                "event": "Order Completed",
                "messageId": "o",
                "properties": {
                    "order_id": "1",
                    "products": [{"product_id": "85123A", "price": 2.55, "quantity": 6}],
                },
            }
        ]
    )
    traits = ProfileService(store).get("u").traits
    assert traits["favourite_categories"].value == ["Candles > Holders"]
    assert traits["favourite_colours"].value == ["white"]
    assert traits["revenue"].value == 15.3


def test_a_merge_moves_the_traits_to_the_surviving_person(store: Store) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    profiles = ProfileService(store)
    ingestor.ingest(
        [
            {
                "type": "track",
                "anonymousId": "a",
                "event": "Product Viewed",
                "messageId": "v",
                "properties": {"product_id": "x"},
            }
        ]
    )
    anon_person = store.person_summary("a").person_id
    assert profiles.get("a").traits["last_viewed_items"].value == ["x"]
    ingestor.ingest(
        [
            {
                "type": "track",
                "userId": "u",
                "event": "Order Completed",
                "messageId": "o",
                "properties": {"order_id": "1", "revenue": 5},
            }
        ]
    )
    ingestor.ingest([{"type": "identify", "userId": "u", "anonymousId": "a", "messageId": "i"}])
    merged = profiles.get("a")
    assert merged.summary.person_id != anon_person
    assert merged.traits["last_viewed_items"].value == ["x"]
    assert merged.traits["order_count"].value == 1
    assert SqlTraits(store.engine).load(anon_person) == []


def test_rebuild_all_matches_incremental_reads(store: Store) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    for n in range(5):
        ingestor.ingest(
            [
                {
                    "type": "track",
                    "userId": f"u{n}",
                    "event": "Order Completed",
                    "messageId": f"o{n}",
                    "properties": {"order_id": str(n), "revenue": n + 1},
                }
            ]
        )
    profiles = ProfileService(store)
    before = {n: profiles.get(f"u{n}").to_json()["traits"] for n in range(5)}
    assert profiles.builder.rebuild_all() == 5
    after = {n: profiles.get(f"u{n}").to_json()["traits"] for n in range(5)}
    assert before == after
