"""The identity graph's contract, on SQLite and PostgreSQL: stitching, merges, refusals, idempotency."""

from __future__ import annotations

import pytest

from shopkeeper.errors import NotFound
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store


def send(store: Store, *messages: dict[str, object]) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(list(messages))


def test_anonymous_browsing_joins_the_profile_on_identify(store: Store) -> None:
    send(
        store,
        {"type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "m1"},
        {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed", "messageId": "m2"},
    )
    send(store, {"type": "identify", "anonymousId": "anon-1", "userId": "u1", "messageId": "m3"})
    person = store.person_summary("u1")
    assert person.event_count == 3
    assert {(i.kind, i.value) for i in person.identities} == {("anonymous_id", "anon-1"), ("user_id", "u1")}
    assert store.person_summary("anon-1").person_id == person.person_id


def test_two_people_meeting_on_identify_are_merged_and_the_merge_recorded(store: Store) -> None:
    send(store, {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "messageId": "m1"})
    send(store, {"type": "track", "userId": "u1", "event": "Ordered", "messageId": "m2"})
    anon_person = store.person_summary("anon-1").person_id
    user_person = store.person_summary("u1").person_id
    assert anon_person != user_person

    send(store, {"type": "identify", "anonymousId": "anon-1", "userId": "u1", "messageId": "m3"})
    person = store.person_summary("anon-1")
    assert person.person_id == user_person
    assert person.event_count == 3
    [merge] = store.identities.merges()
    assert (merge.from_person_id, merge.into_person_id, merge.outcome) == (anon_person, user_person, "merged")
    assert merge.message_id == "m3"


def test_two_known_users_on_one_device_are_never_merged(store: Store) -> None:
    send(store, {"type": "identify", "anonymousId": "device-1", "userId": "alice", "messageId": "m1"})
    send(store, {"type": "identify", "anonymousId": "device-1", "userId": "bob", "messageId": "m2"})
    alice = store.person_summary("alice")
    bob = store.person_summary("bob")
    assert alice.person_id != bob.person_id
    assert alice.event_count == 1 and bob.event_count == 1
    # The device stays with its first user; Bob's login is recorded as a refused merge, once.
    send(
        store, {"type": "track", "anonymousId": "device-1", "userId": "bob", "event": "X", "messageId": "m3"}
    )
    assert store.person_summary("device-1").person_id == alice.person_id
    [refusal] = store.identities.merges()
    assert refusal.outcome == "refused"
    assert (refusal.from_person_id, refusal.into_person_id) == (alice.person_id, bob.person_id)


def test_an_explicit_alias_merges_two_known_users(store: Store) -> None:
    send(store, {"type": "track", "userId": "old-id", "event": "Ordered", "messageId": "m1"})
    send(store, {"type": "track", "userId": "new-id", "event": "Ordered", "messageId": "m2"})
    send(store, {"type": "alias", "previousId": "old-id", "userId": "new-id", "messageId": "m3"})
    person = store.person_summary("old-id")
    assert person.person_id == store.person_summary("new-id").person_id
    assert person.event_count == 3
    assert [m.reason for m in store.identities.merges()] == ["alias"]


def test_alias_of_an_unseen_anonymous_id_links_it(store: Store) -> None:
    send(store, {"type": "alias", "previousId": "anon-9", "userId": "u9", "messageId": "m1"})
    send(store, {"type": "page", "anonymousId": "anon-9", "messageId": "m2"})
    assert store.person_summary("u9").event_count == 2


def test_merges_follow_chains(store: Store) -> None:
    send(store, {"type": "page", "anonymousId": "a", "messageId": "m1"})
    send(store, {"type": "page", "userId": "u", "messageId": "m2"})
    send(store, {"type": "page", "userId": "v", "messageId": "m3"})
    send(store, {"type": "identify", "anonymousId": "a", "userId": "u", "messageId": "m4"})
    send(store, {"type": "alias", "previousId": "u", "userId": "v", "messageId": "m5"})
    person = store.person_summary("a")
    assert person.person_id == store.person_summary("v").person_id
    assert person.event_count == 5
    assert len(store.identities.merges()) == 2


def test_stitching_within_one_batch(store: Store) -> None:
    send(
        store,
        {"type": "page", "anonymousId": "a", "messageId": "m1"},
        {"type": "page", "userId": "u", "messageId": "m2"},
        {"type": "identify", "anonymousId": "a", "userId": "u", "messageId": "m3"},
        {"type": "page", "anonymousId": "a", "messageId": "m4"},
    )
    person = store.person_summary("a")
    assert person.person_id == store.person_summary("u").person_id
    assert person.event_count == 4


def test_a_resent_message_is_stored_once(store: Store) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    first = ingestor.ingest([{"type": "track", "userId": "u", "event": "Ordered", "messageId": "m1"}])
    again = ingestor.ingest(
        [
            {"type": "track", "userId": "u", "event": "Changed on resend", "messageId": "m1"},
            {"type": "track", "userId": "u", "event": "Twice in one batch", "messageId": "m2"},
            {"type": "track", "userId": "u", "event": "Twice in one batch", "messageId": "m2"},
        ]
    )
    assert (first.stored, first.duplicates) == (1, 0)
    assert (again.received, again.stored, again.duplicates) == (3, 1, 2)
    assert store.events.count() == 2
    events = store.events.for_person(store.person_summary("u").person_id)
    assert sorted(e["event"] for e in events) == ["Ordered", "Twice in one batch"]  # first copy wins


def test_email_is_a_lookup_id_but_never_merges(store: Store) -> None:
    send(
        store,
        {"type": "identify", "userId": "u1", "traits": {"email": " Ann@Example.COM "}, "messageId": "a"},
    )
    send(
        store, {"type": "identify", "userId": "u2", "traits": {"email": "ann@example.com"}, "messageId": "b"}
    )
    assert store.person_summary("ann@example.com").person_id == store.person_summary("u1").person_id
    assert store.person_summary("u2").person_id != store.person_summary("u1").person_id
    assert store.identities.merges() == []


def test_external_ids_are_strings(store: Store) -> None:
    send(store, {"type": "track", "userId": 17850, "event": "Ordered", "messageId": "m1"})
    assert store.person_summary("17850").event_count == 1


def test_unknown_ids_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.person_summary("nobody")


def test_a_write_keys_alias_never_merges_known_users(store: Store) -> None:
    """A write key is public: its alias may stitch an anonymous visitor, never two known users, nor give a
    known user a second userId. The refusals are recorded; the shop's own code (no key) still merges."""
    ingestor = Ingestor(store, record_consent=consent_recorder())
    untrusted = {"key_id": 1}
    send(store, {"type": "track", "userId": "alice", "event": "X", "messageId": "m1"})
    send(store, {"type": "track", "userId": "bob", "event": "X", "messageId": "m2"})
    send(store, {"type": "track", "anonymousId": "anon-9", "event": "X", "messageId": "m3"})
    alice, bob = store.person_summary("alice").person_id, store.person_summary("bob").person_id
    generation, bob_generation = store.identities.generation_of(alice), store.identities.generation_of(bob)
    ingestor.ingest(
        [{"type": "alias", "previousId": "alice", "userId": "bob", "messageId": "a1"}], **untrusted
    )
    ingestor.ingest(
        [{"type": "alias", "previousId": "bob", "userId": "bob-2", "messageId": "a2"}], **untrusted
    )
    ingestor.ingest(
        [{"type": "alias", "previousId": "anon-9", "userId": "alice", "messageId": "a3"}], **untrusted
    )
    assert store.person_summary("alice").person_id == alice and store.person_summary("bob").person_id == bob
    assert store.person_summary("bob-2").person_id not in (alice, bob)
    assert store.person_summary("anon-9").person_id == alice  # an anonymous visitor may be stitched
    assert store.identities.generation_of(alice) == generation  # and that leaves alice's links working
    outcomes = [(m.message_id, m.outcome) for m in store.identities.merges()]
    assert outcomes == [("a1", "refused"), ("a2", "refused"), ("a3", "merged")]
    send(store, {"type": "alias", "previousId": "alice", "userId": "bob", "messageId": "a4"})
    assert store.person_summary("alice").person_id == bob  # the shop's own alias merges
    assert store.identities.generation_of(alice) is None  # merged away: no link names them
    assert store.identities.generation_of(bob) not in (None, bob_generation)  # two known people became one
