"""Who is in an audience, on SQLite and PostgreSQL: a hand-built shop where the members of every leaf and
combination are known, with a merged person counted once, both consent defaults, and `only`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select

from shopkeeper.catalog.items import parse_items
from shopkeeper.errors import NotFound
from shopkeeper.events.ingest import Ingestor
from shopkeeper.personas.conditions import parse_condition
from shopkeeper.personas.members import NAMED_LIMIT, AudienceMembers
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.audiences import SqlAudiences
from shopkeeper.store.consents import SqlConsents
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import outbox, people, persona_members, traits, wishes

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
ITEMS = [
    {"item_id": "balloons", "title": "Balloons", "category": "Party > Balloons", "price": 5.0},
    {"item_id": "cake", "title": "Cake", "category": "Party > Cakes", "price": 20.0},
    {"item_id": "mug", "title": "Mug", "category": "Kitchen > Mugs", "price": 8.0},
]


@dataclass
class People:
    alice: int
    bob: int
    carol: int
    dave: int
    anon: int  # merged into carol

    def ids(self, *names: str) -> list[int]:
        return sorted(getattr(self, name) for name in names)


def _at(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def _view(who: dict[str, str], days: float, n: int) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", **who, "timestamp": _at(days), "messageId": f"v{n}"}


def _order(user: str, order: str, days: float, products: list[tuple[str, int]]) -> dict[str, Any]:
    properties = {"products": [{"product_id": item, "quantity": q} for item, q in products]}
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "timestamp": _at(days),
        "messageId": order,
        "properties": properties,
    }


def build_shop(store: Store) -> People:
    """alice: 3 views in the last 14 days, balloons x2 10 days ago and a cake 100 days ago, persona p1,
    granted email_marketing, stated favourite_colour red. bob: 2 views in the last 14 days and one 30
    days ago, a mug 5 days ago, persona p2, withdrew email_marketing, observed favourite_colour blue, a
    suppressed moment. carol: 2 views as an anonymous visitor (granted email_marketing, persona p1, an
    open wish for balloons, all as that visitor) merged into her, 1 view as herself, a back_in_stock
    moment sent 2 days ago. dave: identified, one page "Pricing", nothing else."""
    store.catalog.upsert(parse_items(ITEMS), now=NOW - timedelta(days=200))
    ingest = Ingestor(store, record_consent=consent_recorder()).ingest
    alice, bob = {"userId": "alice"}, {"userId": "bob"}
    ingest(
        [
            _view(alice, 1, 1), _view(alice, 2, 2), _view(alice, 3, 3),
            _view(bob, 1, 4), _view(bob, 2, 5), _view(bob, 30, 6),
            _view({"anonymousId": "anon-c"}, 4, 7), _view({"anonymousId": "anon-c"}, 5, 8),
            _order("alice", "o1", 10, [("balloons", 2)]),
            _order("alice", "o2", 100, [("cake", 1)]),
            _order("bob", "o3", 5, [("mug", 1)]),
            {"type": "identify", "userId": "carol", "timestamp": _at(20), "messageId": "i1"},
            {"type": "page", "userId": "dave", "name": "Pricing", "timestamp": _at(6), "messageId": "p1"},
        ]
    )  # fmt: skip
    anon = store.identities.find_person("anon-c")
    assert anon is not None
    with write_transaction(store.engine) as conn:
        SqlConsents.append(conn, anon, {"email_marketing": True}, at=NOW, channel="api", actor="t")
        conn.execute(insert(persona_members).values(person_id=anon, persona_id="p1", confidence=1, run_id=1))
        conn.execute(insert(wishes).values(_wish(anon, "balloons")))
    ingest([{"type": "identify", "userId": "carol", "anonymousId": "anon-c", "messageId": "i2"}])
    ingest([_view({"userId": "carol"}, 1, 9)])
    found = [store.identities.find_person(name) for name in ("alice", "bob", "carol", "dave")]
    assert None not in found and found[2] == store.identities.find_person("anon-c")
    shop = People(*[int(p) for p in found if p is not None], anon=anon)
    with write_transaction(store.engine) as conn:
        SqlConsents.append(conn, shop.alice, {"email_marketing": True}, at=NOW, channel="api", actor="t")
        SqlConsents.append(conn, shop.bob, {"email_marketing": True}, at=NOW, channel="api", actor="t")
        SqlConsents.append(conn, shop.bob, {"email_marketing": False}, at=NOW, channel="api", actor="t")
        conn.execute(
            insert(persona_members),
            [
                {"person_id": shop.alice, "persona_id": "p1", "confidence": 0.9, "run_id": 1},
                {"person_id": shop.bob, "persona_id": "p2", "confidence": 0.8, "run_id": 1},
            ],
        )
        conn.execute(
            insert(traits), [_trait(shop.alice, "stated", "red"), _trait(shop.bob, "observed", "blue")]
        )
        conn.execute(insert(traits), [_trait(shop.dave, "inferred", "red", days=800)])  # expired
        conn.execute(
            insert(outbox), [_moment(shop.carol, "sent", 2, 1), _moment(shop.bob, "suppressed", 3, 2)]
        )
    return shop


def _wish(person: int, item: str) -> dict[str, Any]:
    return {
        "person_id": person, "item_id": item, "variant_id": "", "attributes": "{}", "wanted": "{}",
        "source": "stated", "evidence": "[]", "status": "open", "created_at": NOW, "updated_at": NOW,
        "expires_at": NOW + timedelta(days=90),
    }  # fmt: skip


def _trait(person: int, source: str, value: Any, days: float = 1) -> dict[str, Any]:
    return {
        "person_id": person, "key": "favourite_colour", "source": source,
        "value": orjson.dumps(value).decode(), "updated_at": NOW - timedelta(days=days),
        "confirmed_at": None, "confidence": None, "evidence": "{}",
    }  # fmt: skip


def _moment(person: int, status: str, days: float, n: int) -> dict[str, Any]:
    at = NOW - timedelta(days=days)
    return {
        "person_id": person, "rule": "back_in_stock", "trigger": "restock", "channel": "email",
        "status": status, "dedupe": f"d{n}", "priority": 1, "transactional": 0, "context": "{}",
        "attempts": 1, "created_at": at, "due_at": at, "sent_at": at if status == "sent" else None,
        "updated_at": at,
    }  # fmt: skip


@pytest.fixture
def shop(store: Store) -> People:
    return build_shop(store)


def _members(store: Store, raw: Any, **options: Any) -> list[int]:
    only = options.pop("only", None)
    audience = AudienceMembers(store, now=lambda: NOW, **options)
    return [int(p) for p in audience.members(parse_condition(raw), only=only)]


VIEWS_14 = {"event": "Product Viewed", "at_least": 3, "within_days": 14}
CASES: list[tuple[Any, tuple[str, ...]]] = [
    (VIEWS_14, ("alice", "carol")),  # carol's views as the visitor she was count as hers
    ({"event": "Product Viewed", "at_least": 3}, ("alice", "bob", "carol")),
    ({"event": "Product Viewed", "at_most": 2, "within_days": 14}, ("bob",)),
    ({"event": "Product Viewed", "at_least": 2, "at_most": 2, "within_days": 14}, ("bob",)),
    ({"event": "Pricing"}, ("dave",)),  # a page view, by its name
    ({"event": "Order Completed", "within_days": 7}, ("bob",)),
    ({"purchased": True}, ("alice", "bob")),
    ({"purchased": "Party", "within_days": 90}, ("alice",)),
    ({"purchased": "Balloons"}, ("alice",)),
    ({"purchased": "Party > Cakes", "within_days": 90}, ()),
    ({"purchased": "party"}, ()),  # case matters
    ({"purchased": "Part"}, ()),  # a whole part, not a prefix
    ({"purchased": "Party", "at_least": 2}, ("alice",)),
    ({"purchased": "Party", "at_least": 2, "within_days": 90}, ()),
    ({"purchased": True, "item": "mug"}, ("bob",)),
    ({"purchased": "Party", "item": "mug"}, ()),
    ({"purchased": "Party", "spend_gte": 30}, ("alice",)),  # 2 x 5 + 20
    ({"purchased": "Party", "spend_gte": 30.01}, ()),
    ({"purchased": True, "spend_lte": 9}, ("bob",)),
    ({"purchased": True, "spend_gte": 5, "spend_lte": 10, "within_days": 90}, ("alice", "bob")),
    ({"persona": "p1"}, ("alice",)),  # carol's row is the visitor's, merged away: it does not pass to her
    ({"persona": "p2"}, ("bob",)),
    ({"persona": "p3"}, ()),
    ({"consent": "email_marketing"}, ("alice", "carol", "dave")),  # opt_out: dave chose nothing
    ({"consent": "email_marketing", "granted": False}, ("bob",)),
    ({"consent": "necessary"}, ("alice", "bob", "carol", "dave")),
    ({"consent": "necessary", "granted": False}, ()),
    ({"wish": True}, ("carol",)),
    ({"wish": "balloons"}, ("carol",)),
    ({"wish": "mug"}, ()),
    ({"wish": True, "status": "notified"}, ()),
    ({"moment": True}, ("carol",)),
    ({"moment": "back_in_stock", "within_days": 7}, ("carol",)),
    ({"moment": "back_in_stock", "within_days": 1}, ()),
    ({"moment": True, "status": "suppressed"}, ("bob",)),
    ({"moment": "welcome"}, ()),
    ({"trait": "favourite_colour", "equals": "red"}, ("alice",)),  # dave's guess has expired
    ({"trait": "favourite_colour", "equals": "red", "source": "stated"}, ("alice",)),
    ({"trait": "favourite_colour", "equals": "blue", "source": "stated"}, ()),
    ({"trait": "favourite_colour", "contains": "blue"}, ("bob",)),
    ({"all": [VIEWS_14, {"purchased": "Party", "within_days": 90}]}, ("alice",)),
    ({"any": [{"persona": "p2"}, {"wish": True}]}, ("bob", "carol")),
    ({"not": {"consent": "email_marketing"}}, ("bob",)),
    ({"not": VIEWS_14}, ("bob", "dave")),
    ({"all": [{"not": {"purchased": True}}, {"consent": "email_marketing"}]}, ("carol", "dave")),
    ({"any": [{"all": [VIEWS_14, {"persona": "p1"}]}, {"event": "Pricing"}]}, ("alice", "dave")),
    ({"not": {"not": {"persona": "p1"}}}, ("alice",)),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_each_leaf_and_combination_finds_exactly_its_people(
    store: Store, shop: People, raw: Any, expected: tuple[str, ...]
) -> None:
    assert _members(store, raw) == shop.ids(*expected)
    everyone = shop.ids("alice", "bob", "carol", "dave")
    audience = AudienceMembers(store, now=lambda: NOW)
    condition = parse_condition(raw)
    assert [p for p in everyone if audience.contains(condition, p)] == shop.ids(*expected)
    assert audience.count(condition) == len(expected)


def test_the_consent_default_opt_in_counts_an_unchosen_purpose_as_not_granted(
    store: Store, shop: People
) -> None:
    opt_in = {"consent_default": "opt_in"}
    assert _members(store, {"consent": "email_marketing"}, **opt_in) == shop.ids("alice", "carol")
    granted_not = {"consent": "email_marketing", "granted": False}
    assert _members(store, granted_not, **opt_in) == shop.ids("bob", "dave")
    assert _members(store, {"consent": "analytics"}, **opt_in) == []
    assert _members(store, {"consent": "analytics"}) == shop.ids("alice", "bob", "carol", "dave")


def test_only_restricts_to_those_people_and_leaves_out_the_merged_away_and_unknown(
    store: Store, shop: People
) -> None:
    only = [shop.bob, shop.carol, shop.anon, 999_999, shop.carol]
    assert _members(store, VIEWS_14, only=only) == [shop.carol]
    assert _members(store, {"not": VIEWS_14}, only=only) == [shop.bob]
    assert _members(store, {"persona": "p1"}, only=[shop.anon]) == []
    assert _members(store, {"trait": "favourite_colour", "equals": "blue"}, only=only) == [shop.bob]
    assert _members(store, {"consent": "email_marketing"}, only=only) == [shop.carol]
    assert _members(store, {"any": [{"persona": "p2"}, {"wish": True}]}, only=[]) == []
    many = [*range(1_000_000, 1_000_000 + NAMED_LIMIT), shop.carol, shop.dave]  # past the named limit
    assert _members(store, {"consent": "email_marketing"}, only=many) == shop.ids("carol", "dave")
    assert _members(store, {"not": VIEWS_14}, only=many) == [shop.dave]


def test_saved_audiences_are_put_read_listed_and_deleted(store: Store) -> None:
    saved = SqlAudiences(store.engine)
    condition = parse_condition({"all": [VIEWS_14, {"consent": "email_marketing"}]})
    row, created = saved.put("engaged", condition, "viewers who may be emailed", NOW)
    assert created and row.condition == condition and row.created_at == row.updated_at == NOW
    later = NOW + timedelta(hours=1)
    row, created = saved.put("engaged", {"persona": "p1"}, None, later)
    assert not created and (row.created_at, row.updated_at, row.description) == (NOW, later, None)
    saved.put("buyers", {"purchased": True, "at_least": 1}, None, NOW)
    got = saved.get("engaged")
    assert (got.condition, got.created_at, got.updated_at) == ({"persona": "p1"}, NOW, later)
    assert [a.name for a in saved.list()] == ["buyers", "engaged"]
    assert saved.delete("engaged") and not saved.delete("engaged")
    with pytest.raises(NotFound) as raised:
        saved.get("engaged")
    assert raised.value.field == "name"


def test_a_trait_leaf_finds_whom_resolve_gives_a_matching_value(store: Store) -> None:
    """Random rows of three sources, fresh and expired, some in every person: the leaf's members are those
    whose `resolve`d value matches, for numbers, lists and a source asked for."""
    import random  # noqa: PLC0415

    from shopkeeper.personas.conditions import trait_matches  # noqa: PLC0415
    from shopkeeper.profiles.traits import resolve  # noqa: PLC0415
    from shopkeeper.store.traits import TraitRecord  # noqa: PLC0415

    draw = random.Random(17)
    ingest = Ingestor(store, record_consent=consent_recorder()).ingest
    ingest([_view({"userId": f"u{n}"}, 1, 1000 + n) for n in range(60)])
    with store.engine.connect() as conn:
        persons = [int(p) for p in conn.execute(select(people.c.person_id)).scalars()]
    records: dict[int, list[TraitRecord]] = {p: [] for p in persons}
    rows = []
    for person in persons:
        for source in ("stated", "observed", "inferred"):
            if draw.random() < 0.5:
                continue
            for key, value in (
                ("order_count", draw.randint(0, 8)),
                ("favourite_sizes", [draw.choice("SML")]),
            ):
                at = NOW - timedelta(days=draw.choice([1, 200, 400, 800, 2000]))
                record = TraitRecord(key, value, source, at, {"count": 1}, None, None)
                records[person].append(record)
                rows.append(
                    {"person_id": person, "key": key, "source": source, "value": orjson.dumps(value).decode(),
                     "updated_at": at, "confirmed_at": None, "confidence": None, "evidence": "{}"}
                )  # fmt: skip
    with write_transaction(store.engine) as conn:
        conn.execute(insert(traits), rows)
    leaves: list[dict[str, Any]] = [
        {"trait": "order_count", "gte": 5},
        {"trait": "order_count", "gte": 2, "lte": 4, "source": "observed"},
        {"trait": "favourite_sizes", "contains": "M"},
        {"trait": "favourite_sizes", "contains": "S", "source": "inferred"},
    ]
    for leaf in leaves:
        source = leaf.get("source")
        expected = []
        for person, held in records.items():
            held = [r for r in held if source is None or r.source == source]
            won = resolve(held, NOW).get(leaf["trait"])
            if won is not None and trait_matches(parse_condition(leaf), won.value):
                expected.append(person)
        assert _members(store, leaf) == sorted(expected), leaf
        assert 0 < len(expected) < len(persons), leaf  # the draw tells people apart
