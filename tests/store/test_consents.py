"""The consent ledger's contract, on SQLite and PostgreSQL: appended, never changed; the newest entry
per purpose is the choice, and entries made before a merge count for the person merged into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.consents import SqlConsents
from shopkeeper.store.engine import write_transaction

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_the_newest_entry_per_purpose_wins_and_a_merged_persons_entries_count(store: Store) -> None:
    ingest = Ingestor(store, record_consent=consent_recorder()).ingest
    ingest([{"type": "page", "anonymousId": "anon-1", "messageId": "m1"}])
    anon = store.identities.find_person("anon-1")
    ingest([{"type": "identify", "userId": "u1", "messageId": "m2"}])
    person = store.identities.find_person("u1")
    assert anon is not None and person is not None
    with write_transaction(store.engine) as conn:
        written = SqlConsents.append(
            conn, anon, {"analytics": True, "email_marketing": True}, at=T0, channel="banner", actor="cookie"
        )
        SqlConsents.append(
            conn, person, {"email_marketing": False}, at=T0 + timedelta(days=1), channel="api", actor="a" * 80
        )
        assert SqlConsents.append(conn, person, {}, at=T0, channel="api", actor="x") == 0
    assert written == 2
    ingest(
        [{"type": "identify", "anonymousId": "anon-1", "userId": "u1", "messageId": "m3"}]
    )  # merges anon-1

    with store.engine.connect() as conn:
        granted = SqlConsents.granted(conn, person, ["analytics", "email_marketing", "personalization"])
        newest = SqlConsents.newest(conn, person)
        history = SqlConsents.history(conn, store.identities.with_merged(person, conn))
        nobody = SqlConsents.granted(conn, person + 1000, ["analytics"])
    assert granted == {"analytics": True, "email_marketing": False}  # no entry for personalization
    assert nobody == {}
    assert {p: (e.granted, e.channel, e.at) for p, e in newest.items()} == {
        "analytics": (True, "banner", T0),
        "email_marketing": (False, "api", T0 + timedelta(days=1)),
    }
    assert [(e.purpose, e.granted, e.actor) for e in history] == [
        ("analytics", True, "cookie"),
        ("email_marketing", True, "cookie"),
        ("email_marketing", False, "a" * 64),  # the actor is cut to the column's 64 characters
    ]
