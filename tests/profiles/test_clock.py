"""One clock, now: ages, expiry and purge all measure against it (issue 12, item 15).

The demo shop replays its real sample shifted to end today, so a live event (the README's own curl
example) neither expires its guesses nor lets `maintenance purge` delete it; a real history keeps its
own dates, and ages and is purged by them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from sqlalchemy import func, select
from tests.conftest import serving

from shopkeeper.cli.import_orders import replay_note
from shopkeeper.events.importers import import_orders, open_file, open_sample
from shopkeeper.privacy.rights import purge
from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.profiles.service import ProfileService
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.schema import events, identities, interactions, traits

README = Path(__file__).parents[2] / "README.md"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def readme_track_example() -> dict[str, object]:
    """The body of the README's first `curl ... /v1/track -d '...'`, as a user would paste it."""
    found = re.search(r"curl [^\n]*/v1/track \\\n(?:[^\n]*\\\n)*?\s*-d '([^']*)'", README.read_text())
    assert found, "the README's curl example to /v1/track is gone"
    body: dict[str, object] = orjson.loads(found.group(1))
    return body


def guesses(store: Store, profiles: ProfileService) -> dict[int, object]:
    """Each sample person's live favourite-categories guess (expired ones are left out by resolve)."""
    with store.engine.connect() as conn:
        people = list(conn.scalars(select(identities.c.person_id).where(identities.c.kind == "user_id")))
    found = {}
    for person_id in people:
        resolved = profiles.traits_of(person_id, keys=["favourite_categories"])
        if "favourite_categories" in resolved:
            found[person_id] = resolved["favourite_categories"].value
    return found


def counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return (
            conn.scalar(select(func.count()).select_from(events)) or 0,
            conn.scalar(select(func.count()).select_from(interactions)) or 0,
            conn.scalar(select(func.count()).select_from(traits).where(traits.c.source == "inferred")) or 0,
        )


def test_the_readme_event_does_not_expire_or_purge_the_demo_shop(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        now = datetime.now(UTC)
        with open_sample() as source:
            report = import_orders(store, source, replay_until=now)  # as `shopkeeper demo` does
        assert report.newest_order_at is not None
        assert report.newest_order_at <= now < report.newest_order_at + timedelta(days=1)
        assert report.shifted_days > 15 * 365
        ProfileBuilder(store).refresh_dirty()
        profiles = ProfileService(store)
        before = guesses(store, profiles)
        assert len(before) > 500  # nearly every one of the 599 customers has a live guess

        write_key, _ = store.keys.create("write", name="readme")
        with serving(store) as url:
            answer = httpx.post(f"{url}/v1/track", json=readme_track_example(), auth=(write_key, ""))
        assert answer.status_code == 200, answer.text
        ProfileBuilder(store).refresh_dirty()
        assert guesses(store, profiles) == before

        stored = counts(store)
        settings = Settings()
        deleted = purge(
            store,
            retention_days=settings.retention_days,
            inferred_retention_days=settings.inferred_retention_days,
        )
        assert (deleted["events"], deleted["interactions"], deleted["inferred_traits"]) == (0, 0, 0)
        assert counts(store) == stored

        # The demo run again tomorrow: nothing new is stored, and the shift is the one stored.
        with open_sample() as source:
            again = import_orders(store, source, replay_until=now + timedelta(days=1))
        assert (again.orders, again.returns, again.shifted_days) == (0, 0, report.shifted_days)
        assert counts(store) == stored
    finally:
        store.close()


def test_a_real_history_keeps_its_dates_and_is_aged_and_purged_by_them(store: Store, tmp_path: Path) -> None:
    recent, old = NOW - timedelta(days=100), NOW - timedelta(days=1200)
    lines = [
        HEADER,
        f"1,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,{old:%Y-%m-%d %H:%M:%S},2.55,1.0,United Kingdom",
        f"2,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,{recent:%Y-%m-%d %H:%M:%S},2.55,1.0,United Kingdom",
        f"3,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,{old:%Y-%m-%d %H:%M:%S},2.55,2.0,United Kingdom",
    ]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")
    with open_file(path) as source:
        report = import_orders(store, source, now=NOW)
    assert report.shifted_days == 0
    assert report.newest_order_at == recent.replace(microsecond=0)
    ProfileBuilder(store).refresh_dirty()
    profiles = ProfileService(store, now=lambda: NOW)
    # Customer 1 bought 100 days ago: a live guess. Customer 2 last bought 1,200 days ago: expired.
    assert "favourite_categories" in profiles.get("1").traits
    assert "favourite_categories" not in profiles.get("2").traits
    assert profiles.get("2").as_of == NOW

    deleted = purge(store, retention_days=1095, inferred_retention_days=365, now=NOW)
    assert (deleted["events"], deleted["interactions"]) == (2, 2)  # the two orders of 1,200 days ago
    with store.engine.connect() as conn:
        left = list(conn.scalars(select(events.c.message_id)))
    assert left == ["online-retail:2"]


def test_a_replay_keeps_the_shift_it_was_first_stored_with(store: Store, tmp_path: Path) -> None:
    lines = [
        HEADER,
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536366,22633,HAND WARMER UNION JACK,6,2011-09-30 15:14:00,1.85,17850.0,United Kingdom",
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    with open_file(path) as source:
        first = import_orders(store, source, replay_until=NOW)
    assert first.newest_order_at == datetime(2026, 12, 3, 15, 14, tzinfo=UTC)  # 15:14 is after noon
    assert replay_note(first, NOW).startswith(
        "The sample's real orders, up to 30 Sep 2011, are replayed shifted by 5,543 days so that they end "
        "yesterday"
    )
    with open_file(path) as source:
        again = import_orders(store, source, replay_until=NOW + timedelta(days=30))
    assert (again.orders, again.shifted_days) == (0, first.shifted_days)
    with store.engine.connect() as conn:
        stamps = sorted(conn.scalars(select(events.c.timestamp)))
    assert stamps == [datetime(2026, 2, 3, 8, 26, tzinfo=UTC), datetime(2026, 12, 3, 15, 14, tzinfo=UTC)]


def test_a_shop_that_holds_the_sample_as_recorded_is_told_so(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"{HEADER}\n1,85123A,HOLDER,6,2011-09-30 15:14:00,2.55,17850.0,United Kingdom\n")
    with open_file(path) as source:
        import_orders(store, source)  # as an earlier shopkeeper stored it: its own dates
    with open_file(path) as source:
        replayed = import_orders(store, source, replay_until=NOW)
    assert replayed.shifted_days == 0
    assert "stored with their own dates, up to 30 Sep 2011" in replay_note(replayed, NOW)
