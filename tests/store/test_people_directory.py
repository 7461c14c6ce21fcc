"""The dashboard's reads of people, on SQLite and PostgreSQL: search by an id, its start, an email in any case
or a person number; who a staff member serves (merged people included); a person's newest events and
decisions; and what an erasure would delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.profiles.service import ProfileService
from shopkeeper.store import Store
from shopkeeper.store.decision_log import store_decisions
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.outbox import SqlOutbox
from shopkeeper.store.people_directory import SqlPeopleDirectory

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def send(store: Store, *messages: dict[str, Any]) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(list(messages))


def at(day: int) -> str:
    return f"2026-03-{day:02d}T10:00:00Z"


def people(store: Store) -> dict[str, int]:
    """u-100 (who browsed as anon-1 first: that person was merged into them), u-101 with an email, u-2,
    and "ü/東京"."""
    send(
        store,
        {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "messageId": "m1", "timestamp": at(1)},
    )
    send(
        store, {"type": "track", "userId": "u-100", "event": "Viewed", "messageId": "m0", "timestamp": at(1)}
    )
    send(
        store,
        {
            "type": "identify",
            "anonymousId": "anon-1",
            "userId": "u-100",
            "messageId": "m2",
            "timestamp": at(2),
        },
        {
            "type": "identify",
            "userId": "u-101",
            "traits": {"email": "Ann.Smith@Example.org"},
            "messageId": "m3",
            "timestamp": at(3),
        },
        {"type": "track", "userId": "u-2", "event": "Order Completed", "messageId": "m4", "timestamp": at(4)},
        {"type": "track", "userId": "u-2", "event": "Cart Viewed", "messageId": "m5", "timestamp": at(5)},
        {"type": "identify", "userId": "ü/東京", "messageId": "m6", "timestamp": at(6)},
    )
    found = {ref: store.identities.find_person(ref) for ref in ("u-100", "u-101", "u-2", "ü/東京")}
    assert all(p is not None for p in found.values())
    return {ref: p for ref, p in found.items() if p is not None}


def test_search_finds_whole_ids_first_then_those_that_start_with_it(store: Store) -> None:
    ids = people(store)
    directory = SqlPeopleDirectory(store.engine)
    found = directory.search("u-10")
    assert [(m.person_id, m.value, m.exact) for m in found] == [
        (ids["u-100"], "u-100", False),
        (ids["u-101"], "u-101", False),
    ]
    whole = directory.search("u-2")
    assert [(m.kind, m.value, m.exact) for m in whole] == [("user_id", "u-2", True)]
    send(store, {"type": "identify", "userId": "u-1", "messageId": "m7", "timestamp": at(7)})
    assert [m.value for m in directory.search("u-1")] == ["u-1", "u-100", "u-101"]  # the whole match first
    assert [m.value for m in directory.search("ü/")] == ["ü/東京"]
    assert directory.search("u-10", limit=1) == found[:1]


def test_search_by_email_in_any_case_and_by_visitor_id(store: Store) -> None:
    ids = people(store)
    directory = SqlPeopleDirectory(store.engine)
    by_email = directory.search("  ANN.smith@example.ORG ")
    assert [(m.person_id, m.kind, m.exact) for m in by_email] == [(ids["u-101"], "email", True)]
    assert [m.person_id for m in directory.search("ann.sm")] == [ids["u-101"]]
    assert [(m.person_id, m.kind) for m in directory.search("anon-")] == [(ids["u-100"], "anonymous_id")]


def test_search_by_person_number_only_for_someone_not_merged_away(store: Store) -> None:
    ids = people(store)
    directory = SqlPeopleDirectory(store.engine)
    found = directory.search(f"#{ids['u-2']}")
    assert [(m.person_id, m.kind, m.value) for m in found] == [(ids["u-2"], "number", f"#{ids['u-2']}")]
    merged_away = store.identities.with_merged(ids["u-100"])[1]
    assert directory.search(f"#{merged_away}") == []
    assert directory.live(merged_away) is None and directory.live(ids["u-100"]) == ids["u-100"]
    assert directory.search("#99999999999999999") == []


def test_search_with_nothing_to_find(store: Store) -> None:
    people(store)
    directory = SqlPeopleDirectory(store.engine)
    for text in ("", "   ", "nobody", "x" * 256, "a\x00b", "%", "_"):
        assert directory.search(text) == []


def test_ids_of_people_user_ids_first(store: Store) -> None:
    ids = people(store)
    found = SqlPeopleDirectory(store.engine).ids_of([ids["u-100"], ids["u-101"]])
    assert found[ids["u-100"]] == [("user_id", "u-100"), ("anonymous_id", "anon-1")]
    assert found[ids["u-101"]] == [("user_id", "u-101"), ("email", "ann.smith@example.org")]
    assert SqlPeopleDirectory(store.engine).ids_of([]) == {}


def _task(store: Store, outbox_id: int, person_id: int, **values: Any) -> int:
    with write_transaction(store.engine) as conn:
        made = SqlOutbox.add_task(
            conn,
            {
                "outbox_id": outbox_id,
                "person_id": person_id,
                "rule": "back_in_stock",
                "due_at": NOW + timedelta(hours=outbox_id),
                "context": {"why_now": "test"},
                "created_at": NOW,
                **values,
            },
        )
    assert made is not None
    return made


def test_staff_serve_people_with_an_open_task_or_one_they_hold(store: Store) -> None:
    ids = people(store)
    merged_away = store.identities.with_merged(ids["u-100"])[1]
    _task(store, 1, merged_away)  # open, made before anon-1 became u-100: u-100's
    _task(store, 2, ids["u-101"], status="claimed", assignee="kim@shop.example")
    _task(store, 3, ids["u-2"], status="done", assignee="lee@shop.example")
    _task(store, 4, ids["ü/東京"], status="snoozed")
    directory = SqlPeopleDirectory(store.engine)
    everyone = list(ids.values())
    assert directory.served(everyone, "kim@shop.example") == {ids["u-100"], ids["u-101"], ids["ü/東京"]}
    assert directory.served(everyone, "lee@shop.example") == {ids["u-100"], ids["u-2"], ids["ü/東京"]}
    assert directory.served([ids["u-101"]], "lee@shop.example") == set()
    assert directory.served([], "kim@shop.example") == set()
    assert directory.served_by("kim@shop.example") == [
        ids["u-100"],
        ids["u-101"],
        ids["ü/東京"],
    ]  # soonest first
    assert directory.served_by("kim@shop.example", limit=1) == [ids["u-100"]]


def test_newest_events_and_decisions_newest_first(store: Store) -> None:
    ids = people(store)
    directory = SqlPeopleDirectory(store.engine)
    events = directory.newest_events([ids["u-2"]])
    assert [(e.type, e.event, e.payload["messageId"]) for e in events] == [
        ("track", "Cart Viewed", "m5"),
        ("track", "Order Completed", "m4"),
    ]
    assert len(directory.newest_events([ids["u-2"]], limit=1)) == 1
    rows = [
        {
            "decision_id": f"d{n}",
            "person_id": ids["u-2"],
            "external_id": "u-2",
            "placement": "web",
            "model_version": None,
            "personalized": 1,
            "items": '[{"item_id": "i1", "score": 1.0, "reasons": [{"text": "because"}]}]',
            "reasons": '[{"text": "popular"}]',
            "at": datetime.now(UTC) + timedelta(seconds=n),
            "unit": "u-2",
            "cohort": "personalized",
        }
        for n in range(3)
    ]
    assert store_decisions(store.engine, rows) == 3
    total, newest = directory.newest_decisions([ids["u-2"]], limit=2)
    assert total == 3 and [d["decision_id"] for d in newest] == ["d2", "d1"]
    assert newest[0]["items"][0]["reasons"] == [{"text": "because"}] and newest[0]["cohort"] == "personalized"
    assert directory.newest_decisions([ids["u-101"]]) == (0, [])


def test_footprint_counts_what_an_erasure_deletes(store: Store) -> None:
    ids = people(store)
    everyone = store.identities.with_merged(ids["u-100"])
    _task(store, 1, everyone[1])
    ProfileService(store).traits_of(ids["u-100"])  # their traits, built
    counts = SqlPeopleDirectory(store.engine).footprint(everyone, ["u-100", "anon-1"])
    assert counts["events"] == 3 and counts["identities"] == 2 and counts["tasks"] == 1
    assert counts["decisions"] == 0 and counts["wishes"] == 0 and counts["messages"] == 0
    assert counts["traits"] > 0
