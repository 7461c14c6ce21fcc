"""The one resolution rule: stated > observed > inferred, decay by half-life, expiry, re-confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.profiles.traits import DecayPolicy, resolve, weight_of
from shopkeeper.store.traits import TraitRecord

NOW = datetime(2026, 5, 3, tzinfo=UTC)
DAY = timedelta(days=1)


def record(key: str, value: object, source: str, days_ago: float, **kw: object) -> TraitRecord:
    return TraitRecord(key, value, source, NOW - days_ago * DAY, {"events": ["m"], "count": 1}, **kw)  # type: ignore[arg-type]


def test_the_airline_case_stated_language_wins_over_everything() -> None:
    resolved = resolve(
        [
            record("language", "de", "inferred", 1, confidence=0.9),  # geolocation's guess
            record("language", "de", "observed", 0),  # the browser's locale, seen today
            record("language", "en", "stated", 400),  # the Union Jack, clicked long ago
        ],
        NOW,
    )
    language = resolved["language"]
    assert language.value == "en"
    assert language.source == "stated"
    assert [(c.record.source, c.status) for c in language.considered] == [
        ("observed", "outranked"),
        ("inferred", "outranked"),
    ]
    assert "stated beats observed 'de', inferred 'de'" in language.reason()


def test_observed_beats_inferred() -> None:
    resolved = resolve([record("country", "FR", "inferred", 0), record("country", "UK", "observed", 30)], NOW)
    assert resolved["country"].value == "UK"


def test_within_a_source_the_newest_wins() -> None:
    resolved = resolve([record("plan", "free", "observed", 10), record("plan", "pro", "observed", 2)], NOW)
    assert resolved["plan"].value == "pro"


def test_observed_traits_decay_by_their_half_life() -> None:
    policy = DecayPolicy(half_life=30 * DAY, expire_after=None)
    assert weight_of(record("k", 1, "observed", 0), NOW, policy) == pytest.approx(1.0)
    assert weight_of(record("k", 1, "observed", 30), NOW, policy) == pytest.approx(0.5)
    assert weight_of(record("k", 1, "observed", 90), NOW, policy) == pytest.approx(0.125)


def test_inferred_weight_is_confidence_times_decay() -> None:
    policy = DecayPolicy(half_life=10 * DAY, expire_after=None)
    assert weight_of(record("k", 1, "inferred", 10, confidence=0.8), NOW, policy) == pytest.approx(0.4)


def test_stated_traits_never_decay_but_ask_to_be_reconfirmed() -> None:
    fresh = resolve([record("size", "M", "stated", 10, confirmed_at=NOW - 10 * DAY)], NOW)["size"]
    old = resolve([record("size", "M", "stated", 800, confirmed_at=NOW - 800 * DAY)], NOW)["size"]
    assert fresh.weight == old.weight == 1.0
    assert old.expires_at is None
    assert (fresh.needs_confirmation, old.needs_confirmation) == (False, True)


def test_expired_traits_never_win_and_fall_back_to_a_weaker_live_source() -> None:
    policies = {"favourite_colours": DecayPolicy(half_life=30 * DAY, expire_after=90 * DAY)}
    resolved = resolve(
        [
            record("favourite_colours", ["grey"], "observed", 100),
            record("favourite_colours", ["blue"], "inferred", 5, confidence=0.7),
        ],
        NOW,
        policies,
    )
    assert resolved["favourite_colours"].value == ["blue"]
    assert [c.status for c in resolved["favourite_colours"].considered] == ["expired"]
    only_expired = resolve([record("favourite_colours", ["grey"], "observed", 100)], NOW, policies)
    assert only_expired == {}


def test_facts_like_order_count_do_not_decay() -> None:
    resolved = resolve([record("order_count", 7, "observed", 3000)], NOW)
    assert resolved["order_count"].weight == 1.0
    assert resolved["order_count"].expires_at is None
