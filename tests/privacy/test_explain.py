"""Explain, on SQLite and PostgreSQL: a trait whose every value expired is shown, with each value's age
against its expiry, and that no value won (regression: such a trait was left out, so explain never said
why it was gone)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shopkeeper import Shop

STATED = {"shopkeeper": {"stated": True}}


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    opened = Shop.open(database_url)
    yield opened
    opened.close()


def _traits(explained: dict[str, Any], key: str) -> dict[str, Any]:
    return next(t for t in explained["traits"] if t["key"] == key)


def test_expired_traits_are_explained_with_their_candidates(shop: Shop) -> None:
    person = "ann"
    shop.track(
        "Product Viewed",
        user_id=person,
        properties={"product_id": "mug", "category": "Mugs"},
        context={"locale": "de-DE", "location": {"country": "Germany"}},
        timestamp="2007-01-10T10:00:00Z",
    )
    shop.identify(user_id=person, traits={"language": "en"}, context=STATED, timestamp="2011-09-01T10:00:00Z")
    # However the shop's clock is set, the 2007 view is years old (1,695 days by its newest event).
    explained = shop.explain(person)
    as_of = datetime.fromisoformat(explained["as_of"])
    days = round((as_of - datetime(2007, 1, 10, 10, tzinfo=UTC)).total_seconds() / 86400, 1)
    assert days >= 1695
    gone = {t["key"]: t for t in explained["expired_traits"]}
    assert {"last_viewed_items", "favourite_categories", "country"} <= set(gone)
    assert "last_viewed_items" not in {t["key"] for t in explained["traits"]}

    viewed = gone["last_viewed_items"]
    assert (viewed["value"], viewed["status"]) == (None, "expired")
    assert viewed["why"] == "No value won: its only value expired"
    [candidate] = viewed["candidates"]
    assert (candidate["source"], candidate["value"], candidate["status"]) == ("observed", ["mug"], "expired")
    assert candidate["age_days"] == days
    assert candidate["decay"] == {"half_life_days": 30, "expires_after_days": 120}
    assert candidate["expires_at"].startswith("2007-05-10")
    assert candidate["why"] == (
        f"we saw ['mug'], but its newest evidence is {days:g} days old and observed last_viewed_items "
        "values expire after 120 days, so it expired on 10 May 2007"
    )
    assert gone["favourite_categories"]["candidates"][0]["decay"]["expires_after_days"] == 730
    assert gone["country"]["candidates"][0]["value"] == "Germany"

    # A trait that has a winner still shows its expired candidate, and why it expired.
    language = _traits(explained, "language")
    assert [(c["source"], c["status"]) for c in language["candidates"]] == [
        ("stated", "won"),
        ("observed", "expired"),
    ]
    expired = language["candidates"][1]
    assert expired["why"].startswith(f"we saw 'de', but its newest evidence is {days:g} days old")
    assert "expire after 1095 days" in expired["why"]
    assert language["candidates"][0]["why"].startswith("you told us")


def test_outranked_candidates_say_what_beat_them(shop: Shop) -> None:
    # Sent now (no timestamp), so that neither value is old enough to expire by any clock.
    shop.identify(user_id="bo", traits={"first_name": "Zelda"})
    shop.identify(user_id="bo", traits={"first_name": "Zed"}, context=STATED)
    explained = shop.explain("bo")
    assert explained["expired_traits"] == []
    outranked = _traits(explained, "first_name")["candidates"][1]
    assert outranked["status"] == "outranked"
    assert outranked["why"] == "we saw 'Zelda', but stated beats observed"
