"""A trait's evidence is exactly the events that voted for its value: checked on real profiles (the first
6,000 lines of the bundled Online Retail sample), each with one live event added today, as a shop's first
live visit after an import would add, and some with a stated dislike.

Regressions: `country = Germany` cited 36 events, 35 of which said United Kingdom; `favourite_categories`
cited orders of 2010 while its score came from one view today.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from importlib.resources import files
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from shopkeeper import Shop
from shopkeeper.events.importers.orders import import_orders
from shopkeeper.events.importers.source import open_file
from shopkeeper.profiles.derive import EVIDENCE_IDS, FAVOURITE_HALF_LIFE, INTERACTION_WEIGHTS
from shopkeeper.store.schema import events, identities, items
from shopkeeper.store.traits import TraitRecord

SAMPLE_LINES = 6_000
PEOPLE = 60
TODAY = "2026-12-01T10:00:00Z"
Event = Mapping[str, Any]


def _products(event: Event) -> list[Mapping[str, Any]]:
    properties = event.get("properties") or {}
    products = properties.get("products")
    return products if isinstance(products, list) else [properties]


def _kind(event: Event) -> str | None:
    return {
        "order completed": "purchase",
        "product added": "cart",
        "product viewed": "view",
        "order refunded": "return",
    }.get(str(event.get("event", "")).lower())


class Oracle:
    """Which events support a trait's value, said afresh from the table in docs/people.md, event by event."""

    def __init__(self, catalog: Mapping[str, tuple[str, dict[str, Any]]], history: list[Event]) -> None:
        self.catalog = catalog
        self.history = history
        self.cancelled = {
            str(e["properties"]["order_id"]) for e in history if e.get("event") == "Order Cancelled"
        }

    def favourite(self, key: str, product: Mapping[str, Any]) -> Any:
        """What a product says of a favourite: its category, colour or size (the event's, else the
        catalog's)."""
        category, attributes = self.catalog.get(str(product.get("product_id")), ("", {}))
        if key == "favourite_categories":
            return product.get("category") or category
        name = {"favourite_colours": ("colour", "color"), "favourite_sizes": ("size",)}[key]
        return next(
            (found for n in name if (found := product.get(n))),
            next((found for n in name if (found := attributes.get(n))), None),
        )

    def supporters(self, record: TraitRecord) -> list[Event]:
        test = self.test(record)
        return [e for e in self.history if test(e)]

    def test(self, record: TraitRecord) -> Callable[[Event], bool]:
        key, value = record.key, record.value
        orders = {"order_count", "average_order_value"}
        tests: dict[str, Callable[[Event], bool]] = {
            "first_seen": lambda e: _at(e) == datetime.fromisoformat(value),
            "last_seen": lambda e: _at(e) == datetime.fromisoformat(value),
            "country": lambda e: ((e.get("context") or {}).get("location") or {}).get("country") == value,
            "language": lambda e: str((e.get("context") or {}).get("locale", ""))[:2].lower() == value,
            "return_count": lambda e: e.get("event") == "Order Refunded",
            "revenue": lambda e: self.counted_order(e) or e.get("event") == "Order Refunded",
            "currency": lambda e: self.counted_order(e) and e["properties"].get("currency") == value,
            **{
                favourite: lambda e, favourite=favourite: (
                    (_kind(e) or "return") != "return"
                    and any(self.favourite(favourite, p) in value for p in _products(e))
                )
                for favourite in ("favourite_categories", "favourite_colours", "favourite_sizes")
            },
            "last_viewed_items": lambda e: (
                _kind(e) == "view" and any(str(p.get("product_id")) in value for p in _products(e))
            ),
        }
        if key in orders:
            return self.counted_order
        if key in tests:
            return tests[key]
        # Anything else was said by an identify (or a stated track): the events that said this value.
        return lambda e: _said(e, key) == value and _stated(e) == (record.source == "stated")

    def counted_order(self, event: Event) -> bool:
        return event.get("event") == "Order Completed" and (
            str(event["properties"].get("order_id")) not in self.cancelled
        )

    def strength(self, record: TraitRecord, event: Event, newest: datetime) -> float:
        """A favourite's vote from one event: its weight, fading back from the person's newest event."""
        kind = _kind(event)
        assert kind is not None
        votes = sum(1 for p in _products(event) if self.favourite(record.key, p) in record.value)
        fade = 0.5 ** ((newest - _at(event)) / FAVOURITE_HALF_LIFE)
        return votes * INTERACTION_WEIGHTS[kind] * fade


def _at(event: Event) -> datetime:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))


def _stated(event: Event) -> bool:
    marker = (event.get("context") or {}).get("shopkeeper")
    return isinstance(marker, dict) and marker.get("stated") is True


def _said(event: Event, key: str) -> Any:
    if event.get("type") == "identify":
        return (event.get("traits") or {}).get(key)
    return (event.get("properties") or {}).get(key) if _stated(event) else None


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("evidence")
    raw = (files("shopkeeper") / "data" / "online_retail_sample.csv.gz").read_bytes()
    path = root / "sample.csv"
    path.write_text("\n".join(gzip.decompress(raw).decode().splitlines()[: SAMPLE_LINES + 1]) + "\n")
    opened = Shop.open(f"sqlite:///{root / 'shop.db'}")
    with open_file(path) as source:
        import_orders(opened.store, source)
    yield opened
    opened.close()


def _live(shop: Shop, number: int, user: str, item_id: str, top_category: str) -> None:
    """Today's first live visit: a view from Germany, in German; every third person also states that
    they dislike the category they bought most of."""
    shop.track(
        "Product Viewed",
        user_id=user,
        properties={"product_id": item_id},
        context={"location": {"country": "Germany"}, "locale": "de-DE"},
        timestamp=TODAY,
        message_id=f"live-{user}",
    )
    if number % 3 == 0:
        shop.identify(
            user_id=user,
            traits={"disliked_categories": [top_category.split(" > ", maxsplit=1)[0]]},
            context={"shopkeeper": {"stated": True}},
            timestamp=TODAY,
            messageId=f"dislike-{user}",
        )


def test_every_evidence_event_voted_for_the_value_and_every_voter_is_cited(shop: Shop) -> None:
    with shop.store.engine.connect() as conn:
        catalog = {
            item_id: (category, orjson.loads(attributes))
            for item_id, category, attributes in conn.execute(
                select(items.c.item_id, items.c.category, items.c.attributes)
            )
        }
        people = conn.execute(
            select(identities.c.person_id, identities.c.value)
            .where(identities.c.kind == "user_id")
            .order_by(identities.c.person_id)
            .limit(PEOPLE)
        ).all()
    item_ids = sorted(catalog)
    for number, (person_id, user) in enumerate(people):
        favourite = shop.profiles.traits_of(person_id).get("favourite_categories")
        top = favourite.value[0] if favourite is not None else catalog[item_ids[0]][0]
        _live(shop, number, user, item_ids[(number * 37) % len(item_ids)], top)
    checked: dict[str, int] = {}
    for person_id, _user in people:
        shop.profiles.traits_of(person_id)  # rebuilds the person with today's events
        with shop.store.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.payload).where(events.c.person_id == person_id).order_by(events.c.timestamp)
            )
            history = [orjson.loads(payload) for (payload,) in rows]
        oracle = Oracle(catalog, history)
        newest = max(_at(e) for e in history)
        for record in shop.profiles.records_of(person_id):
            _check(oracle, record, newest)
            checked[record.key] = checked.get(record.key, 0) + 1
    # Every kind of trait the sample and the live events give was checked, on many people.
    assert {"country", "language", "favourite_categories", "order_count", "currency"} <= set(checked)
    assert checked["disliked_categories"] == len(range(0, len(people), 3))


def _check(oracle: Oracle, record: TraitRecord, newest: datetime) -> None:
    cited = list(record.evidence["events"])
    supporters = oracle.supporters(record)
    ids = [str(e["messageId"]) for e in supporters]
    where = (record.key, record.value, cited)
    assert set(cited) <= set(ids), where  # every cited event voted for the value
    assert len(set(cited)) == len(cited), where
    if record.key in ("first_seen", "last_seen"):
        assert cited, where  # not a vote: one event at that time is the evidence
        return
    assert record.evidence["count"] == len(set(ids)), (where, ids)  # and every voter is counted
    if len(set(ids)) <= EVIDENCE_IDS:
        assert set(cited) == set(ids), where  # all are cited, when there are few enough
        return
    # Past the cap: the strongest (favourites) or the newest (everything else) are cited.
    assert len(cited) == EVIDENCE_IDS, where
    by_id = {str(e["messageId"]): e for e in supporters}
    if record.key.startswith("favourite_"):
        weakest = min(oracle.strength(record, by_id[m], newest) for m in cited)
        left = [oracle.strength(record, by_id[m], newest) for m in set(ids) - set(cited)]
        assert weakest >= max(left) - 1e-12, where
    else:
        oldest = min(_at(by_id[m]) for m in cited)
        assert all(_at(by_id[m]) <= oldest for m in set(ids) - set(cited)), where


def test_a_stated_dislike_drops_the_guess_from_the_resolved_profile(shop: Shop) -> None:
    """The guess `Bags > ...` beside a stated dislike of `Bags` is dropped, and the profile says so."""
    with shop.store.engine.connect() as conn:
        bags = conn.scalar(select(items.c.item_id).where(items.c.category.like("Bags > %")).limit(1))
    shop.ingest(
        [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": "bag-lover",
                "messageId": f"bags-{k}",
                "timestamp": f"2026-11-0{k + 1}T10:00:00Z",
                "properties": {"order_id": f"bags-{k}", "products": [{"product_id": bags}]},
            }
            for k in range(3)
        ]
    )
    guess = shop.profile("bag-lover").traits["favourite_categories"]
    assert guess.source == "inferred" and guess.value[0].startswith("Bags > ")
    shop.identify(
        user_id="bag-lover",
        traits={"disliked_categories": ["Bags"]},
        context={"shopkeeper": {"stated": True}},
        timestamp="2026-11-05T10:00:00Z",
    )
    profile = shop.profile("bag-lover")
    assert "favourite_categories" not in profile.traits  # nothing else was ever bought
    assert profile.traits["disliked_categories"].value == ["Bags"]
