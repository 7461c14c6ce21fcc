"""Derive a person's observed and stated traits from their events: a pure fold, oldest event first.

What becomes what (docs/people.md lists every key):
- any event: `first_seen`, `last_seen`; `language` from `context.locale`; `country` from
  `context.location.country`;
- `identify`: each trait, as `observed` (from the shop's systems), or as `stated` when the event carries
  `context.shopkeeper.stated = true` (a person's own answer); a `track` so marked states its properties;
- "Order Completed": `order_count` (distinct orders, less cancelled ones), `revenue` (net of refunds),
  `average_order_value`, `currency`; "Order Refunded": `return_count`;
- purchases, carts and views: `favourite_categories`, `favourite_colours`, `favourite_sizes`, weighted
  1 / 0.5 / 0.2 and fading with a 180-day half-life measured back from the person's newest event. These
  are guesses (`inferred`, with a confidence: the chosen values' share of the weight), so a person can
  reject them; a category the person stated they dislike is never guessed;
- a stated `null` clears what the person stated before;
- "Product Viewed" / "Product Added" (less "Product Removed"): `last_viewed_items`, `last_carted_items`.

Every trait's evidence is the events that voted for its value, and no other: their message ids (at most
`EVIDENCE_IDS`, the newest, or for the guesses the strongest votes) and how many there were.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson

from shopkeeper.profiles.traits import within_category
from shopkeeper.store.traits import INFERRED_KEYS, Source, TraitRecord

FAVOURITE_HALF_LIFE = timedelta(days=180)
# The guesses this fold makes; other inferred traits come from models and are not rebuilt from events.
_CATEGORIES, _COLOURS, _SIZES = INFERRED_KEYS
_NO_ATTRIBUTES: Mapping[str, Any] = {}
_ABSENT = object()
INTERACTION_WEIGHTS = {"purchase": 1.0, "cart": 0.5, "view": 0.2, "return": -1.0}
TOP_FAVOURITES = 3
RECENT_ITEMS = 5
MAX_TRAIT_KEY = 64
EVIDENCE_IDS = 10


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What profiles need to know of an item."""

    category: str
    attributes: Mapping[str, Any]


@dataclass
class _Slot:
    """The newest value of one trait from one source, and the events that said each value: a value's
    evidence is the events that said it (the newest `EVIDENCE_IDS` of them, and how many)."""

    value: Any
    at: datetime
    said: dict[bytes, tuple[list[str], int]] = field(default_factory=dict)

    def see(self, value: Any, at: datetime, message_id: str) -> None:
        self.value, self.at = value, at
        key = _value_key(value)
        events, count = self.said.get(key, ([], 0))
        if not events or events[-1] != message_id:
            self.said[key] = ([*events[-(EVIDENCE_IDS - 1) :], message_id], count + 1)

    def evidence(self) -> dict[str, Any]:
        events, count = self.said[_value_key(self.value)]
        return _evidence(events, count)


def _value_key(value: Any) -> bytes:
    """A value as a key, however it nests (JSON values, as events carry them)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(value).encode()


class _Votes(NamedTuple):
    """One event's votes for favourites: each product's category, colour and size, as (trait, value)
    in the order the products come, all with the event's weight."""

    at: datetime
    weight: float
    message_id: str
    votes: list[tuple[str, str]]


@dataclass
class _Fold:
    slots: dict[tuple[str, Source], _Slot] = field(default_factory=dict)
    orders: dict[str, tuple[datetime, str, float]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    refunds: list[tuple[datetime, str, float]] = field(default_factory=list)
    currencies: dict[str, str] = field(default_factory=dict)  # order id -> its currency
    interactions: list[_Votes] = field(default_factory=list)
    viewed: list[tuple[str, datetime, str]] = field(default_factory=list)
    carted: list[tuple[str, datetime, str]] = field(default_factory=list)
    first: tuple[datetime, str] | None = None
    last: tuple[datetime, str] | None = None

    def note(self, key: str, source: Source, value: Any, at: datetime, message_id: str) -> None:
        slot = self.slots.get((key, source))
        if slot is None:
            slot = self.slots[(key, source)] = _Slot(value, at)
        slot.see(value, at, message_id)


def parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value


def product_ids(events: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every item id the events mention, so the caller can fetch just those catalog entries."""
    found: set[str] = set()
    for event in events:
        properties = event.get("properties") or {}
        if not isinstance(properties, dict):
            continue
        found.update(item_id for item_id, _ in _items(properties))
    return found


def derive_traits(
    events: Iterable[Mapping[str, Any]], catalog: Mapping[str, CatalogEntry]
) -> list[TraitRecord]:
    """The observed and stated traits these events (one person's, oldest first) support."""
    fold = _Fold()
    for event in events:
        _fold_one(fold, event, catalog)
    return _records(fold)


def _fold_one(fold: _Fold, event: Mapping[str, Any], catalog: Mapping[str, CatalogEntry]) -> None:
    at = parse_time(event["timestamp"])
    message_id = str(event["messageId"])
    if fold.first is None or at < fold.first[0]:
        fold.first = (at, message_id)
    if fold.last is None or at >= fold.last[0]:
        fold.last = (at, message_id)
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    assert isinstance(context, dict)
    stated = _is_stated(context)
    locale = context.get("locale")
    if isinstance(locale, str) and len(locale) >= 2 and locale[:2].isalpha():
        fold.note("language", "observed", locale[:2].lower(), at, message_id)
    location = context.get("location")
    if isinstance(location, dict) and isinstance(location.get("country"), str) and location["country"]:
        fold.note("country", "observed", location["country"], at, message_id)

    kind = event.get("type")
    if kind == "identify":
        traits = dict(context.get("traits") or {}) if isinstance(context.get("traits"), dict) else {}
        traits.update(event.get("traits") or {})
        for key, value in traits.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_TRAIT_KEY:
                continue
            if value is not None:
                fold.note(key, "stated" if stated else "observed", value, at, message_id)
            elif stated:  # the person cleared what they told us before
                fold.slots.pop((key, "stated"), None)
        return
    if kind != "track":
        return
    properties = event.get("properties") or {}
    if not isinstance(properties, dict):
        return
    if stated:
        for key, value in properties.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_TRAIT_KEY:
                continue
            if value is not None:
                fold.note(key, "stated", value, at, message_id)
            else:
                fold.slots.pop((key, "stated"), None)
        return
    name = str(event.get("event", "")).lower()
    if name == "order completed":
        _order(fold, properties, at, message_id, catalog)
    elif name == "order refunded":
        value = _money(properties.get("total", properties.get("revenue")))
        if value is None:
            value = _products_value(properties)
        fold.refunds.append((at, message_id, abs(value)))
        _interact(fold, properties, "return", at, message_id, catalog)
    elif name == "order cancelled":
        if properties.get("order_id") is not None:
            fold.cancelled.add(str(properties["order_id"]))
    elif name == "product viewed":
        _interact(fold, properties, "view", at, message_id, catalog)
        fold.viewed += [(item_id, at, message_id) for item_id, _ in _items(properties)]
    elif name == "product added":
        _interact(fold, properties, "cart", at, message_id, catalog)
        fold.carted += [(item_id, at, message_id) for item_id, _ in _items(properties)]
    elif name == "product removed":
        removed = {item_id for item_id, _ in _items(properties)}
        fold.carted = [c for c in fold.carted if c[0] not in removed]


def _order(
    fold: _Fold,
    properties: Mapping[str, Any],
    at: datetime,
    message_id: str,
    catalog: Mapping[str, CatalogEntry],
) -> None:
    order_id = str(properties.get("order_id") or message_id)
    revenue = _money(properties.get("revenue", properties.get("total")))
    if revenue is None:
        revenue = _products_value(properties)
    fold.orders[order_id] = (at, message_id, revenue)
    currency = properties.get("currency")
    if isinstance(currency, str) and currency:
        fold.currencies[order_id] = currency.upper()
    _interact(fold, properties, "purchase", at, message_id, catalog)


def _interact(
    fold: _Fold,
    properties: Mapping[str, Any],
    kind: str,
    at: datetime,
    message_id: str,
    catalog: Mapping[str, CatalogEntry],
) -> None:
    votes: list[tuple[str, str]] = []
    for item_id, product in _items(properties):
        entry = catalog.get(item_id)
        category = product.get("category") or (entry.category if entry else "")
        attributes = entry.attributes if entry else _NO_ATTRIBUTES
        colour = (
            product.get("colour")
            or product.get("color")
            or attributes.get("colour")
            or attributes.get("color")
        )
        size = product.get("size") or attributes.get("size")
        if isinstance(category, str) and category:
            votes.append((_CATEGORIES, category))
        if isinstance(colour, str) and colour:
            votes.append((_COLOURS, colour))
        if isinstance(size, str) and size:
            votes.append((_SIZES, size))
    if votes:
        fold.interactions.append(_Votes(at, INTERACTION_WEIGHTS[kind], message_id, votes))


def _items(properties: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(item id, the product object) for an event's `products`, or the event itself."""
    raw = properties.get("products")
    candidates = raw if isinstance(raw, list) else [properties]
    found: list[tuple[str, Mapping[str, Any]]] = []
    for product in candidates:
        if not isinstance(product, dict):
            continue
        item_id = product.get("product_id", _ABSENT)
        if type(item_id) is str:  # the common case, first
            found.append((item_id, product))
            continue
        if item_id is _ABSENT:
            item_id = product.get("sku", product.get("id"))
        if item_id is None or isinstance(item_id, bool | dict | list):
            continue
        found.append((str(item_id), product))
    return found


def _products_value(properties: Mapping[str, Any]) -> float:
    """What the products cost together (price times quantity; no quantity counts as 1)."""
    value: float = 0  # as `sum` starts: no products is 0, not 0.0
    for _, product in _items(properties):
        quantity = _money(product.get("quantity"))
        value += (_money(product.get("price")) or 0.0) * (1.0 if quantity is None else quantity)
    return value


def _money(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _is_stated(context: Mapping[str, Any]) -> bool:
    marker = context.get("shopkeeper")
    return isinstance(marker, dict) and marker.get("stated") is True


def _evidence(events: list[str], count: int, **more: Any) -> dict[str, Any]:
    return {"events": events[-EVIDENCE_IDS:], "count": count, **more}


def _records(fold: _Fold) -> list[TraitRecord]:
    records = [
        TraitRecord(
            key,
            slot.value,
            source,
            slot.at,
            slot.evidence(),
            confirmed_at=slot.at if source == "stated" else None,
        )
        for (key, source), slot in fold.slots.items()
    ]
    if fold.first is None or fold.last is None:
        return records
    first_at, first_id = fold.first
    last_at, last_id = fold.last
    records.append(
        TraitRecord("first_seen", first_at.isoformat(), "observed", first_at, _evidence([first_id], 1))
    )
    records.append(
        TraitRecord("last_seen", last_at.isoformat(), "observed", last_at, _evidence([last_id], 1))
    )

    orders = {k: v for k, v in fold.orders.items() if k not in fold.cancelled}
    if orders or fold.refunds:
        order_events = [v[1] for v in sorted(orders.values())]
        refund_events = [r[1] for r in sorted(fold.refunds)]
        newest = max([v[0] for v in orders.values()] + [r[0] for r in fold.refunds])
        gross = sum(v[2] for v in orders.values())
        refunded = sum(r[2] for r in fold.refunds)
        money = {"gross": round(gross, 2), "refunded": round(refunded, 2)}
        records.append(
            TraitRecord("order_count", len(orders), "observed", newest, _evidence(order_events, len(orders)))
        )
        records.append(
            TraitRecord(
                "revenue",
                round(gross - refunded, 2),
                "observed",
                newest,
                _evidence(order_events + refund_events, len(orders) + len(fold.refunds), **money),
            )
        )
        if orders:
            records.append(
                TraitRecord(
                    "average_order_value",
                    round(gross / len(orders), 2),
                    "observed",
                    newest,
                    _evidence(order_events, len(orders)),
                )
            )
        records.append(
            TraitRecord(
                "return_count",
                len(fold.refunds),
                "observed",
                newest,
                _evidence(refund_events, len(fold.refunds)),
            )
        )
        counted = Counter(fold.currencies[o] for o in orders if o in fold.currencies)
        if counted:
            currency, times = counted.most_common(1)[0]
            paid = sorted(v for o, v in orders.items() if fold.currencies.get(o) == currency)
            in_currency = [message_id for _at, message_id, _revenue in paid]
            records.append(
                TraitRecord("currency", currency, "observed", newest, _evidence(in_currency, times))
            )

    records += _favourites(fold, last_at)
    for key, seen in (("last_viewed_items", fold.viewed), ("last_carted_items", fold.carted)):
        if seen:
            recent: list[str] = []
            for item_id, _at, _mid in reversed(seen):
                if item_id not in recent:
                    recent.append(item_id)
                if len(recent) == RECENT_ITEMS:
                    break
            # The evidence: the events that showed these items (not those of older ones).
            shown = list(dict.fromkeys(mid for item_id, _at, mid in seen if item_id in recent))
            records.append(TraitRecord(key, recent, "observed", seen[-1][1], _evidence(shown, len(shown))))
    return records


def _favourites(fold: _Fold, newest: datetime) -> list[TraitRecord]:
    """The guessed favourites: each value's votes, fading back from the person's newest event. A
    category the person told us they dislike is never guessed (nor anything under it). The evidence is
    the events that voted for the chosen values: the `EVIDENCE_IDS` strongest (newest first among
    equals), oldest first, with how many there were."""
    disliked = _stated_list(fold, "disliked_categories")
    scores: dict[str, Counter[str]] = {}
    dropped: dict[str, set[str]] = {}
    is_disliked: dict[str, bool] = {}
    # An event's votes all fade alike: their weight times the decay is worked out once per event.
    weighted = [e.weight * 0.5 ** ((newest - e.at) / FAVOURITE_HALF_LIFE) for e in fold.interactions]
    for event, strength_of_vote in zip(fold.interactions, weighted, strict=True):
        for trait, value in event.votes:
            if disliked and trait == _CATEGORIES:
                if value not in is_disliked:
                    is_disliked[value] = any(within_category(value, d) for d in disliked)
                if is_disliked[value]:
                    dropped.setdefault(trait, set()).add(value)
                    continue
            counter = scores.get(trait)
            if counter is None:
                counter = scores[trait] = Counter()
            counter[value] += strength_of_vote
    records = []
    for trait, counter in scores.items():
        ranked = [(v, s) for v, s in counter.most_common() if s > 0]
        if not ranked:
            continue
        top = ranked[0][1]
        chosen = [(v, s) for v, s in ranked[:TOP_FAVOURITES] if s >= 0.2 * top]
        values = {v for v, _ in chosen}
        strength: dict[str, float] = {}
        when: dict[str, datetime] = {}
        for event, strength_of_vote in zip(fold.interactions, weighted, strict=True):
            if event.weight <= 0:
                continue
            for voted, value in event.votes:
                if voted == trait and value in values:
                    strength[event.message_id] = strength.get(event.message_id, 0.0) + strength_of_vote
                    when[event.message_id] = event.at
        strongest = sorted(strength, key=lambda m: (-strength[m], -when[m].timestamp(), m))[:EVIDENCE_IDS]
        cited = sorted(strongest, key=lambda m: (when[m], m))
        total = sum(s for _, s in ranked)
        more: dict[str, Any] = {"scores": {v: round(s, 3) for v, s in chosen}}
        if dropped.get(trait):
            more["left_out_as_disliked"] = sorted(dropped[trait])
        records.append(
            TraitRecord(
                trait,
                [v for v, _ in chosen],
                "inferred",  # a guess from behaviour: the person can say "that's not me"
                max(when.values()),
                {"events": cited, "count": len(strength), **more},
                confidence=round(sum(s for _, s in chosen) / total, 3),
            )
        )
    return records


def _stated_list(fold: _Fold, key: str) -> list[str]:
    """What the person stated for `key` (a list of strings, or one), as a list; [] if nothing."""
    slot = fold.slots.get((key, "stated"))
    if slot is None:
        return []
    value = slot.value
    return [str(v) for v in value if v] if isinstance(value, list) else [str(value)] if value else []
