"""The store's reads of people, on SQLite and PostgreSQL: who is known, who was merged into whom, by
which ids, and their messages, as the services read them."""

from __future__ import annotations

from typing import Any

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store


def send(store: Store, *messages: dict[str, Any]) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(list(messages))


def at(day: int) -> str:
    return f"2026-03-{day:02d}T10:00:00Z"


def merged_pair(store: Store) -> tuple[int, int, int]:
    """u1, who browsed as anon-1 before signing in, and u2: (u1's person, anon-1's old person, u2's)."""
    send(
        store,
        {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "messageId": "m1", "timestamp": at(3)},
    )
    anon = store.identities.find_person("anon-1")
    send(store, {"type": "track", "userId": "u1", "event": "Ordered", "messageId": "m2", "timestamp": at(1)})
    send(
        store,
        {"type": "identify", "anonymousId": "anon-1", "userId": "u1", "messageId": "m3", "timestamp": at(2)},
    )
    send(store, {"type": "identify", "userId": "u2", "messageId": "m4", "timestamp": at(4)})
    u1, u2 = store.identities.find_person("u1"), store.identities.find_person("u2")
    assert anon is not None and u1 is not None and u2 is not None and anon != u1
    return u1, anon, u2


def test_people_and_who_was_merged_into_them(store: Store) -> None:
    u1, anon, u2 = merged_pair(store)
    assert store.identities.person_ids() == sorted([u1, u2])  # anon-1's person was merged away
    assert store.identities.with_merged(u1) == [u1, anon]
    assert store.identities.with_merged(u2) == [u2]
    with store.engine.connect() as conn:
        assert store.identities.with_merged(u1, conn) == [u1, anon]


def test_external_ids_in_the_order_they_were_linked(store: Store) -> None:
    send(store, {"type": "page", "anonymousId": "anon-9", "messageId": "p1"})
    send(store, {"type": "identify", "anonymousId": "anon-9", "userId": "u9", "messageId": "p2"})
    send(
        store, {"type": "identify", "userId": "u9", "messageId": "p3", "traits": {"email": "u9@example.org"}}
    )
    person = store.identities.find_person("u9")
    assert person is not None
    assert store.identities.external_ids([person]) == [
        ("anonymous_id", "anon-9"),
        ("user_id", "u9"),
        ("email", "u9@example.org"),
    ]
    assert store.identities.external_ids([]) == []


def test_unit_ids_are_the_first_user_id_and_anonymous_id_of_a_person_and_those_merged_into_them(
    store: Store,
) -> None:
    u1, _, u2 = merged_pair(store)
    with store.engine.connect() as conn:
        assert store.identities.unit_ids(u1, conn) == {"anonymous_id": "anon-1", "user_id": "u1"}
        assert store.identities.unit_ids(u2, conn) == {"user_id": "u2"}
        assert store.identities.unit_ids(u2 + 1000, conn) == {}


def test_messages_by_person_oldest_first_and_the_oldest_of_several(store: Store) -> None:
    u1, anon, u2 = merged_pair(store)
    with store.engine.connect() as conn:
        by_person = [(p, m["messageId"]) for p, m in store.events.payloads_by_person([u1, u2], conn)]
        everyone = [m["messageId"] for m in store.events.payloads([u1, anon], conn, limit=10)]
        first_two = [m["messageId"] for m in store.events.payloads([u1, anon, u2], conn, limit=2)]
    assert by_person == [(u1, "m2"), (u1, "m3"), (u1, "m1"), (u2, "m4")]  # the merge moved anon-1's events
    assert everyone == ["m2", "m3", "m1"]
    assert first_two == ["m2", "m3"]
