"""Triggers: from an event, a change of the catalog, or a daily scan, the moments that might be made.

Each returns `Candidate`s; the engine then checks respect and writes them. Wishes are recorded here, as
events arrive: a view or a cart of an out-of-stock variant (observed), or a `Back In Stock Requested`
event (stated). Its properties: `product_id` (or `sku`), and optionally `variant_id`, `size`, `colour`
(or `color`), `note`. When an event names no size, the person's stated size for the item's category is
the size wanted.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from shopkeeper.moments import wishes
from shopkeeper.moments.rules import Rule
from shopkeeper.profiles.traits import within_category
from shopkeeper.store import Store
from shopkeeper.store.moments import Change, LoggedEvent, SqlMomentFacts, Variant, Wish

VIEWED, ADDED, ORDERED, REQUESTED = (
    "Product Viewed",
    "Product Added",
    "Order Completed",
    "Back In Stock Requested",
)
FACTS = SqlMomentFacts()
FRESH_WISHES = timedelta(days=2)  # a step preloads the wishes live at the oldest change it may act on


@dataclass
class Candidate:
    """A moment that might be made: for whom, under which rule, about what, and when it happened."""

    rule: Rule
    person_id: int
    dedupe: str
    at: datetime
    item_id: str | None = None
    variant_id: str | None = None
    wish_id: int | None = None
    context: dict[str, Any] = field(default_factory=dict)
    suppress: str | None = None  # made suppressed from the start (duplicate, not enough stock)


@dataclass
class World:
    """What triggers read: the transaction, the store, the time, and the stated traits met so far."""

    conn: Connection
    store: Store
    now: datetime
    history: bool = False  # a replay: stock is read as it was at each event's time
    stated_cache: dict[int, dict[str, Any]] = field(default_factory=dict)
    # read once per step for the restocks it holds (see `preload`)
    variants_cache: dict[str, list[Variant]] = field(default_factory=dict)
    wishes_cache: dict[str, list[Wish]] = field(default_factory=dict)
    values_cache: dict[int, tuple[float, float]] = field(default_factory=dict)
    notified: dict[int, datetime] = field(default_factory=dict)  # wishes given a moment in this step
    # brings these people's traits up to date inside the step's transaction (their new events counted)
    refresh: Callable[[Connection, Iterable[int]], None] | None = None

    def preload(self, changes: Iterable[Change]) -> None:
        """Read, for every restock among `changes`, its items' variants and live wishes, and the value of
        each person who wished (a step that brings back a thousand variants reads them in a few queries)."""
        items = sorted({c.item_id for c in changes if c.field == "stock" and _restocked(c)})
        if not items:
            return
        if not self.history:
            self.variants_cache.update(self.store.moments.variants(self.conn, items))
        for wish in self.store.moments.open_wishes(self.conn, items, self.now - FRESH_WISHES):
            self.wishes_cache.setdefault(wish.item_id, []).append(wish)
        for item_id in items:
            self.wishes_cache.setdefault(item_id, [])
        self.values_cache.update(
            wish_values(self, {w.person_id for ws in self.wishes_cache.values() for w in ws})
        )

    def stated(self, person_id: int) -> dict[str, Any]:
        if person_id not in self.stated_cache:
            self.stated_cache[person_id] = {
                r.key: r.value for r in self.store.traits.load(person_id, self.conn) if r.source == "stated"
            }
        return self.stated_cache[person_id]

    def variants(self, item_id: str, at: datetime) -> list[Variant]:
        if item_id in self.variants_cache:
            return self.variants_cache[item_id]
        found = self.store.moments.variants(self.conn, [item_id]).get(item_id, [])
        if not self.history:
            return found
        past = []
        for v in found:
            stock = FACTS.stock_at(self.conn, item_id, v.variant_id, at)
            past.append(
                v if stock is False else Variant(v.item_id, v.variant_id, v.attributes, v.price, _int(stock))
            )
        return past

    def item(self, item_id: str) -> dict[str, Any] | None:
        return self.store.moments.item_facts(self.conn, [item_id]).get(item_id)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def products(event: LoggedEvent) -> list[dict[str, Any]]:
    properties = event.payload.get("properties")
    if not isinstance(properties, dict):
        return []
    products = properties.get("products")
    found = products if isinstance(products, list) else [properties]
    return [p for p in found if isinstance(p, dict) and item_id_of(p)]


def item_id_of(product: Mapping[str, Any]) -> str | None:
    value = product.get("product_id", product.get("sku"))
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _wanted(product: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for key in ("size", "colour", "color"):
        value = product.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            found[key] = str(value)
    return wishes.normalize(found)


# ---- wishes from events ------------------------------------------------------------------------------


def record_wishes(world: World, event: LoggedEvent) -> list[Wish]:
    """The wishes an event records: a `Back In Stock Requested` (stated), or a view or cart of a variant
    that is out of stock (observed)."""
    if event.type != "track" or event.event not in (VIEWED, ADDED, REQUESTED):
        return []
    made = []
    for product in products(event):
        item_id = item_id_of(product)
        assert item_id is not None
        found = _wish_of(world, event, product, item_id)
        if found is not None:
            made.append(found)
    return made


def _wish_of(world: World, event: LoggedEvent, product: Mapping[str, Any], item_id: str) -> Wish | None:
    item = world.item(item_id)
    if item is None:
        return None
    variants = world.variants(item_id, event.timestamp)
    variant_id = product.get("variant_id", product.get("variant"))
    variant_id = (
        str(variant_id) if isinstance(variant_id, str | int) and not isinstance(variant_id, bool) else ""
    )
    named = next((v for v in variants if v.variant_id == variant_id), None)
    wanted = {} if named else _wanted(product)
    if not named and "size" not in wanted and any("size" in wishes.normalize(v.attributes) for v in variants):
        size = wishes.stated_size(world.stated(event.person_id), item["category"])
        if size is not None:
            wanted["size"] = size
    requested = event.event == REQUESTED
    if named is not None:
        if not requested and named.stock != 0:
            return None
        variant_id, wanted = named.variant_id, {}
    else:
        matching = [v for v in variants if wanted and _has(v, wanted)]
        if not requested and (not matching or any(v.stock != 0 for v in matching)):
            return None
        variant_id = wishes.one_variant(variants, wanted)
        if variant_id:
            wanted = {}
    note = product.get("note") if isinstance(product.get("note"), str) else None
    return wishes.record(
        world.conn,
        world.store.moments,
        event.person_id,
        item_id,
        variant_id=variant_id,
        attributes=wanted,
        source="stated" if requested else "observed",
        at=event.timestamp,
        message_id=str(event.payload.get("messageId", "")) or None,
        note=note[:1000] if note else None,
    )


def _has(variant: Variant, wanted: Mapping[str, str]) -> bool:
    have = {k: v.casefold() for k, v in wishes.normalize(variant.attributes).items()}
    return all(have.get(k) == v.casefold() for k, v in wanted.items())


# ---- triggers on events ----------------------------------------------------------------------------------


def on_event(world: World, rules: Iterable[Rule], event: LoggedEvent) -> list[Candidate]:
    """Candidates an event makes (abandoned cart, milestone, ask), and the wishes it closes."""
    found: list[Candidate] = []
    if event.type == "track" and event.event == ORDERED:
        bought = [i for p in products(event) if (i := item_id_of(p))]
        if bought:
            world.store.moments.close_wishes(world.conn, event.person_id, bought, "fulfilled", world.now)
    for rule in rules:
        if rule.trigger == "abandoned_cart" and event.event == ADDED and event.type == "track":
            found.append(_abandoned_cart(rule, event))
        elif rule.trigger == "milestone":
            found += _milestones(world, rule, event)
        elif rule.trigger == "ask" and event.event == VIEWED and event.type == "track":
            found += _ask(world, rule, event)
    return found


def _abandoned_cart(rule: Rule, event: LoggedEvent) -> Candidate:
    item_id = next((i for p in products(event) if (i := item_id_of(p))), None)
    day = event.timestamp.date().isoformat()
    return Candidate(
        rule,
        event.person_id,
        f"abandoned_cart:{rule.name}:{event.person_id}:{day}",
        event.timestamp,
        item_id=item_id,
        context={"moment": "abandoned_cart", "cart_at": event.timestamp.isoformat()},
    )


def _milestones(world: World, rule: Rule, event: LoggedEvent) -> list[Candidate]:
    params, pid = rule.params, event.person_id
    found = []
    if params.trait is not None:
        carried = event.payload.get("traits") if event.type == "identify" else event.payload.get("properties")
        value = carried.get(params.trait) if isinstance(carried, dict) else None
        if _number(value) is not None and _number(value) >= params.value:
            key = f"milestone:{rule.name}:{pid}:{params.trait}:{params.value:g}"
            found.append(
                Candidate(rule, pid, key, event.timestamp, context=_moment("trait", params.trait, value))
            )
    if event.type != "track" or event.event != ORDERED or not (params.orders or params.spend):
        return found
    everyone = world.store.identities.with_merged(pid, world.conn)
    orders = FACTS.orders(world.conn, everyone, event.id)
    if params.orders and len(orders) in params.orders:
        key = f"milestone:{rule.name}:{pid}:orders:{len(orders)}"
        found.append(
            Candidate(rule, pid, key, event.timestamp, context=_moment("orders", "orders", len(orders)))
        )
    if params.spend:
        amounts = [_number(p.get("revenue", p.get("total"))) or 0.0 for _, _, p in orders]
        after, before = sum(amounts), sum(amounts[:-1])
        for tier in sorted(params.spend):
            if before < tier <= after:
                key = f"milestone:{rule.name}:{pid}:spend:{tier:g}"
                found.append(
                    Candidate(rule, pid, key, event.timestamp, context=_moment("spend", "spend", tier))
                )
    return found


def _moment(kind: str, what: str, value: Any) -> dict[str, Any]:
    return {"moment": "milestone", "milestone": kind, "what": what, "value": value}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def season(at: datetime) -> str:
    return f"{at.year}-q{(at.month - 1) // 3 + 1}"


def _ask(world: World, rule: Rule, event: LoggedEvent) -> list[Candidate]:
    pid, question = event.person_id, rule.params.question
    stated = world.stated(pid)
    key = f"ask:{rule.name}:{pid}:{question}:{season(event.timestamp)}"
    if question == "size":
        if stated.get("size") or stated.get("sizes"):
            return []
        for product in products(event):
            item_id = item_id_of(product)
            variants = world.variants(item_id, event.timestamp) if item_id else []
            if any("size" in wishes.normalize(v.attributes) for v in variants):
                return [
                    Candidate(
                        rule,
                        pid,
                        key,
                        event.timestamp,
                        item_id=item_id,
                        context={"moment": "ask", "question": "size"},
                    )
                ]
        return []
    if stated.get("favourite_categories"):
        return []
    guessed = [
        r
        for r in world.store.traits.load(pid, world.conn)
        if r.key == "favourite_categories" and r.source != "stated"
    ]
    if guessed and all((r.confidence or 0.0) >= rule.params.weak_below for r in guessed):
        return []
    return [Candidate(rule, pid, key, event.timestamp, context={"moment": "ask", "question": question})]


# ---- triggers on catalog changes ----------------------------------------------------------------------


def on_change(world: World, rules: Iterable[Rule], change: Change) -> list[Candidate]:
    found: list[Candidate] = []
    for rule in rules:
        if rule.trigger == "back_in_stock" and change.field == "stock" and _restocked(change):
            found += _back_in_stock(world, rule, change)
        elif rule.trigger == "price_drop" and change.field == "price":
            found += _price_drop(world, rule, change)
        elif (
            rule.trigger == "new_arrival"
            and change.field == "price"
            and not change.variant_id
            and change.old_value is None
        ):
            found += _new_arrival(world, rule, change)
    return found


def _restocked(change: Change) -> bool:
    return (change.old_value is None or change.old_value <= 0) and (change.new_value or 0) > 0


def _back_in_stock(world: World, rule: Rule, change: Change) -> list[Candidate]:
    """One moment per live wish this variant meets, the most valuable first, as many as units came back;
    a wish notified within `dedupe_days` is a duplicate (one message per wish and restock episode)."""
    variant = next(
        (v for v in world.variants(change.item_id, change.at) if v.variant_id == change.variant_id), None
    )
    if variant is None:
        return []
    live = world.wishes_cache.get(change.item_id)
    if live is None:
        live = world.store.moments.open_wishes(world.conn, [change.item_id], change.at)
    wanted = [w for w in live if w.expires_at > change.at and wishes.matches(w, variant)]
    if not wanted:
        return []
    window = timedelta(days=rule.params.dedupe_days)

    def last(wish: Wish) -> datetime | None:
        return world.notified.get(wish.id, wish.notified_at)

    fresh = [w for w in wanted if (at := last(w)) is None or change.at - at >= window]
    found = [
        _bis(rule, w, change, f"back_in_stock-dup:{rule.name}:{w.id}:{change.id}", suppress="duplicate")
        for w in wanted
        if w not in fresh
    ]
    units = int(change.new_value or 0)
    if len(fresh) > units and world.refresh is not None:  # the ranking decides: their revenue, up to date
        stale = world.store.traits.dirty_among(world.conn, {w.person_id for w in fresh})
        if stale:
            world.refresh(world.conn, stale)
            world.values_cache.update(wish_values(world, stale))
    ranked = rank_wishes(world, fresh)
    for position, wish in enumerate(ranked):
        if position < units:
            found.append(_bis(rule, wish, change, f"back_in_stock:{rule.name}:{wish.id}:{change.id}"))
            world.notified[wish.id] = change.at
        else:
            found.append(
                _bis(
                    rule,
                    wish,
                    change,
                    f"back_in_stock-short:{rule.name}:{wish.id}:{change.id}",
                    suppress="not_enough_stock",
                )
            )
    return found


def _bis(rule: Rule, wish: Wish, change: Change, key: str, suppress: str | None = None) -> Candidate:
    context = {
        "moment": "back_in_stock",
        "wish": {
            "id": wish.id,
            "source": wish.source,
            "attributes": wish.attributes,
            "since": wish.created_at.isoformat(),
        },
        "units": change.new_value,
    }
    return Candidate(
        rule, wish.person_id, key, change.at, change.item_id, change.variant_id, wish.id, context, suppress
    )


def wish_values(world: World, people: Iterable[int]) -> dict[int, tuple[float, float]]:
    """Each person's value as a wisher: their revenue so far, and the time of their newest purchase."""
    ids = sorted(set(people))
    revenue = FACTS.trait_values(world.conn, ids, "revenue")
    newest = world.store.moments.newest_purchases(world.conn, ids)
    return {p: (_number(revenue.get(p)) or 0.0, newest[p].timestamp() if p in newest else 0.0) for p in ids}


def rank_wishes(world: World, found: list[Wish]) -> list[Wish]:
    """The most valuable wishes first: the person's revenue so far, then their newest purchase, then the
    oldest wish (who asked first)."""
    missing = {w.person_id for w in found if w.person_id not in world.values_cache}
    if missing:
        world.values_cache.update(wish_values(world, missing))

    def value(wish: Wish) -> tuple[float, float, float]:
        spent, last = world.values_cache[wish.person_id]
        return (-spent, -last, wish.created_at.timestamp())

    return sorted(found, key=value)


def _price_drop(world: World, rule: Rule, change: Change) -> list[Candidate]:
    before, after = change.old_value, change.new_value
    if before is None or after is None or after >= before or before <= 0:
        return []
    params = rule.params
    if (before - after) / before * 100 < params.min_percent or before - after < params.min_amount:
        return []
    seen = world.store.moments.seen_since(
        world.conn, [change.item_id], change.at - timedelta(days=params.seen_days)
    )
    return [
        Candidate(
            rule,
            pid,
            f"price_drop:{rule.name}:{pid}:{change.item_id}:{change.variant_id}:{after:g}",
            change.at,
            change.item_id,
            change.variant_id or None,
            context={"moment": "price_drop", "before": before, "after": after, "seen_at": at.isoformat()},
        )
        for pid, at in sorted(seen.get(change.item_id, {}).items())
    ]


def _new_arrival(world: World, rule: Rule, change: Change) -> list[Candidate]:
    item = world.item(change.item_id)
    if item is None or change.at - item["created_at"] > timedelta(days=rule.params.max_age_days):
        return []
    keys = ("favourite_categories", "favourite_colours", "favourite_brands", "size", "sizes")
    variants = world.variants(change.item_id, change.at)
    found = []
    for pid, stated in sorted(SqlMomentFacts.stated(world.conn, keys).items()):
        why = _taste_match(item, stated)
        if why is None or not _size_available(item, variants, stated):
            continue
        key = f"new_arrival:{rule.name}:{pid}:{change.item_id}"
        found.append(
            Candidate(
                rule, pid, key, change.at, change.item_id, context={"moment": "new_arrival", "matches": why}
            )
        )
    return found


def _taste_match(item: Mapping[str, Any], stated: Mapping[str, Any]) -> str | None:
    for category in stated.get("favourite_categories") or []:
        if within_category(item["category"], str(category)):
            return f"category {category}"
    attributes = wishes.normalize(item["attributes"])
    for key, trait in (("colour", "favourite_colours"), ("brand", "favourite_brands")):
        have = str(attributes.get(key, "")).casefold()
        if have and any(str(v).casefold() == have for v in stated.get(trait) or []):
            return f"{key} {attributes[key]}"
    return None


def _size_available(item: Mapping[str, Any], variants: list[Variant], stated: Mapping[str, Any]) -> bool:
    sized = [v for v in variants if "size" in wishes.normalize(v.attributes)]
    if not sized:
        return True
    size = wishes.stated_size(stated, item["category"])
    if size is None:
        return any((v.stock or 0) > 0 or v.stock is None for v in sized)
    return any(_has(v, {"size": size}) and (v.stock is None or v.stock > 0) for v in sized)


# ---- daily scans ---------------------------------------------------------------------------------------


def scan(world: World, rule: Rule) -> list[Candidate]:
    """The moments of a day that no event brings: winbacks and first-order anniversaries."""
    if rule.trigger == "winback":
        return _winback(world, rule)
    if rule.trigger == "milestone" and rule.params.anniversary:
        return _anniversaries(world, rule)
    return []


def _winback(world: World, rule: Rule) -> list[Candidate]:
    """People silent for `factor` times their usual gap between orders (and at least `min_days`)."""
    params, now = rule.params, world.now
    quiet = world.store.moments.last_activity(
        conn=world.conn, since=now - timedelta(days=3650), until=now - timedelta(days=params.min_days)
    )
    bought = world.store.moments.purchases(world.conn, sorted(quiet))
    found = []
    for pid, rows in bought.items():
        days = sorted({at.date() for at, _, _ in rows})
        if len(days) < params.min_orders:
            continue
        gap = statistics.median((b - a).days for a, b in itertools.pairwise(days))
        silent = (now.date() - days[-1]).days
        if silent >= max(params.min_days, params.factor * gap):
            key = f"winback:{rule.name}:{pid}:{days[-1].isoformat()}"
            context = {
                "moment": "winback",
                "last_order": days[-1].isoformat(),
                "usual_gap_days": gap,
                "silent_days": silent,
            }
            found.append(Candidate(rule, pid, key, now, context=context))
    return found


def _anniversaries(world: World, rule: Rule) -> list[Candidate]:
    """A year (or more) to the day since a person's first order, for people who bought in the last year."""
    now = world.now
    recent = world.store.moments.last_activity(conn=world.conn, since=now - timedelta(days=365), until=now)
    found = []
    for pid, rows in world.store.moments.purchases(world.conn, sorted(recent)).items():
        if not rows:
            continue
        first = rows[0][0].date()
        years = now.year - first.year
        if years >= 1 and (first.month, first.day) == (now.month, now.day):
            key = f"milestone:{rule.name}:{pid}:anniversary:{years}"
            found.append(Candidate(rule, pid, key, now, context=_moment("anniversary", "years", years)))
    return found
