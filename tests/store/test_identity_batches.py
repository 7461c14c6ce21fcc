"""Identity resolution of whole batches, on SQLite and PostgreSQL: people made and merged within one
write, the same answers as one message at a time, and a fixed number of statements for any newcomers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.schema import identities, people


def send(store: Store, *messages: dict[str, Any]) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(list(messages))


@contextmanager
def counting_statements(store: Store) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_a_merge_into_someone_new_in_the_same_batch_keeps_their_email(store: Store) -> None:
    # Regression (the reverted 9cb0f91): the merge below moved the new user to another person id while
    # the identify's email was then linked to the old, provisional one, and the write failed.
    send(
        store,
        {"type": "page", "anonymousId": "a", "messageId": "m1"},
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "m2"},
        {
            "type": "identify",
            "anonymousId": "a",
            "userId": "u",
            "traits": {"email": "u@example.com"},
            "messageId": "m3",
        },
    )
    person = store.person_summary("u")
    assert person.event_count == 3
    assert store.person_summary("a").person_id == person.person_id
    assert store.person_summary("u@example.com").person_id == person.person_id
    [merge] = store.identities.merges()
    assert (merge.into_person_id, merge.outcome, merge.message_id) == (person.person_id, "merged", "m3")


def test_an_alias_between_two_people_new_in_the_batch(store: Store) -> None:
    send(
        store,
        {"type": "page", "userId": "old", "messageId": "m1"},
        {"type": "page", "userId": "new", "messageId": "m2"},
        {"type": "alias", "previousId": "old", "userId": "new", "messageId": "m3"},
        {"type": "identify", "userId": "new", "traits": {"email": "n@example.com"}, "messageId": "m4"},
        {"type": "page", "anonymousId": "later", "messageId": "m5"},
    )
    person = store.person_summary("new")
    assert store.person_summary("old").person_id == person.person_id
    assert store.person_summary("n@example.com").person_id == person.person_id
    assert person.event_count == 4
    assert store.person_summary("later").person_id != person.person_id
    assert [m.reason for m in store.identities.merges()] == ["alias"]


def test_a_refusal_between_newcomers_is_recorded_once(store: Store) -> None:
    send(
        store,
        {"type": "identify", "anonymousId": "device", "userId": "alice", "messageId": "m1"},
        {"type": "identify", "anonymousId": "device", "userId": "bob", "messageId": "m2"},
        {"type": "page", "anonymousId": "device", "userId": "bob", "messageId": "m3"},
    )
    send(store, {"type": "page", "anonymousId": "device", "userId": "bob", "messageId": "m4"})
    alice, bob = store.person_summary("alice"), store.person_summary("bob")
    assert alice.person_id != bob.person_id
    [refusal] = store.identities.merges()
    assert refusal.outcome == "refused"
    assert (refusal.from_person_id, refusal.into_person_id) == (alice.person_id, bob.person_id)


def test_newcomers_get_ids_above_everyone_before(store: Store) -> None:
    send(store, *({"type": "page", "anonymousId": f"a{i}", "messageId": f"m{i}"} for i in range(3)))
    with store.engine.connect() as conn:
        newest = conn.scalar(select(func.max(people.c.person_id)))
    send(store, *({"type": "page", "anonymousId": f"b{i}", "messageId": f"n{i}"} for i in range(5)))
    ids = {store.person_summary(f"b{i}").person_id for i in range(5)}
    assert len(ids) == 5
    assert min(ids) > newest


def _newcomers(prefix: str, n: int) -> list[dict[str, Any]]:
    """n anonymous visitors and n customers, each seen for the first time."""
    messages: list[dict[str, Any]] = []
    for i in range(n):
        messages.append({"type": "page", "anonymousId": f"{prefix}-a{i}", "messageId": f"{prefix}-p{i}"})
        messages.append(
            {
                "type": "identify",
                "userId": f"{prefix}-u{i}",
                "anonymousId": f"{prefix}-d{i}",
                "traits": {"email": f"{prefix}{i}@example.com"},
                "messageId": f"{prefix}-i{i}",
            }
        )
    return messages


def test_newcomers_cost_the_same_statements_however_many_they_are(store: Store) -> None:
    # Regression: identity resolution used to run one INSERT per new person and one per new id.
    ingestor = Ingestor(store, record_consent=consent_recorder())
    with counting_statements(store) as few:
        ingestor.ingest(_newcomers("few", 2))
    with counting_statements(store) as many:
        ingestor.ingest(_newcomers("many", 40))
    assert len(many) == len(few)
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(identities)) == 42 * 4
    assert store.person_summary("many39@example.com").person_id == store.person_summary("many-u39").person_id


def _random_stream(seed: int, n: int) -> list[dict[str, Any]]:
    """Messages over a few devices and users, so that stitching, merges, refusals and aliases all happen."""
    rng = random.Random(seed)
    devices = [f"d{i}" for i in range(12)]
    users = [f"u{i}" for i in range(6)]
    messages: list[dict[str, Any]] = []
    for i in range(n):
        roll = rng.random()
        message: dict[str, Any] = {"messageId": f"m{i}"}
        if roll < 0.4:
            message.update(type="page", anonymousId=rng.choice(devices))
        elif roll < 0.55:
            message.update(type="track", event="Order Completed", userId=rng.choice(users))
        elif roll < 0.9:
            user = rng.choice(users)
            message.update(type="identify", anonymousId=rng.choice(devices), userId=user)
            if rng.random() < 0.5:
                message["traits"] = {"email": f"{user}@example.com"}
        else:
            message.update(type="alias", previousId=rng.choice(devices + users), userId=rng.choice(users))
        messages.append(message)
    return messages


def _graph(store: Store, external_ids: list[str]) -> tuple[set[frozenset[str]], list[tuple[str, str]]]:
    """Which ids share a person (person ids themselves may differ), and the merges' outcomes in order."""
    groups: dict[int, set[str]] = {}
    for external_id in external_ids:
        groups.setdefault(store.person_summary(external_id).person_id, set()).add(external_id)
    outcomes = [(m.outcome, m.reason) for m in store.identities.merges()]
    return {frozenset(group) for group in groups.values()}, outcomes


def test_one_batch_stitches_like_one_message_at_a_time(tmp_path: Any, database_url: str) -> None:
    messages = _random_stream(7, 120)
    seen = sorted(
        {m[k] for m in messages for k in ("anonymousId", "userId", "previousId") if k in m}
        | {m["traits"]["email"] for m in messages if "traits" in m}
    )
    together = Store.open(database_url)
    try:
        Ingestor(together, record_consent=consent_recorder()).ingest(messages)
        batched = _graph(together, seen)
    finally:
        together.close()
    alone = Store.open(f"sqlite:///{tmp_path / 'alone.db'}")
    try:
        ingestor = Ingestor(alone, record_consent=consent_recorder())
        for message in messages:
            ingestor.ingest([message])
        one_by_one = _graph(alone, seen)
    finally:
        alone.close()
    assert batched == one_by_one
    assert any(outcome == "merged" for outcome, _ in batched[1])
    assert any(outcome == "refused" for outcome, _ in batched[1])
