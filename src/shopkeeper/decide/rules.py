"""The rules decide applies after scoring, and which reason holds for each item: pure, over arrays and rows.

Only items in stock (in the person's stated size, per category when they stated `sizes`), never stated
dislikes or rejected items, nor the item the call's `context` says the person is looking at, a diversity
cap per category; each rule that removes an item adds a reason. Each chosen item says why: bought
before, like something the person bought or looked at, or how it sells. The sentences themselves are
`shopkeeper.decide.reasons`'; the rows come from the store (`SqlCatalog.stock`, `SqlServing.history`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from shopkeeper.catalog.items import readable_title
from shopkeeper.decide import reasons
from shopkeeper.decide.log import DecidedItem
from shopkeeper.decide.placements import Placement
from shopkeeper.decide.reasons import Reason
from shopkeeper.profiles.traits import ResolvedTrait, within_category
from shopkeeper.recommend.base import History, IntArray
from shopkeeper.recommend.bundle import POPULAR_ITEMS, ModelBundle
from shopkeeper.recommend.explain import strongest_marked
from shopkeeper.store.catalog import StockRow
from shopkeeper.store.interactions import PURCHASE, RETURN, VIEW


class CatalogRow:
    """What the rules need of an item: its title, category, and (when it has variants) their stock."""

    __slots__ = ("category", "title", "variants")

    def __init__(self, title: str, category: str) -> None:
        self.title = title
        self.category = category
        self.variants: list[tuple[dict[str, Any], int | None]] = []


CatalogReader = Callable[[Sequence[str]], dict[str, CatalogRow]]


def apply_rules(
    bundle: ModelBundle,
    where: Placement,
    n: int,
    traits: dict[str, ResolvedTrait],
    candidates: list[str],
    scores: np.ndarray,
    past: Past,
    said: list[Reason],
    catalog_of: CatalogReader,
    *,
    personalized: bool,
    stated_categories: list[str],
    category_members: Mapping[str, IntArray] | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[DecidedItem]:
    """The first `n` candidates that pass the rules, each with its reasons; `said` (the decision's own
    reasons) gets one line per rule that left items out. `catalog_of` reads catalog rows (see `catalog_rows`);
    `category_members` holds the model's items in each stated favourite category (see
    `category_members`), so that an item picked for its category says how it sells there. `context` is
    the call's (see `viewing`)."""
    size_trait = traits.get("size")
    size = str(size_trait.value) if size_trait is not None and size_trait.source == "stated" else None
    sizes_trait = traits.get("sizes")
    sizes = (
        {str(k).lower(): str(v) for k, v in sizes_trait.value.items()}
        if sizes_trait is not None and sizes_trait.source == "stated" and isinstance(sizes_trait.value, dict)
        else {}
    )
    disliked = set(stated(traits, "disliked_categories"))
    rejected = set(stated(traits, "rejected_items"))
    looking_at = viewing(context)
    removed = {"dislike": 0, "rejected": 0, "viewing": 0, "stock": 0, "size": 0, "diversity": 0}
    per_category: dict[str, int] = {}
    ranked = list(zip(candidates, scores.tolist(), strict=True))
    # Catalog rows are read as the rules reach the candidates, a chunk at a time: most decisions
    # stop within the first `n` or so of their `8 n` candidates.
    catalog: dict[str, CatalogRow] = {}
    read = 0
    chosen: list[tuple[str, float, CatalogRow | None, list[Reason]]] = []
    for position, (item_id, score) in enumerate(ranked):
        if position >= read:
            chunk = [c for c, _ in ranked[read : read + max(read, 2 * n)]]
            catalog.update(catalog_of(chunk))
            read += len(chunk)
        info = catalog.get(item_id)
        category = info.category if info else ""
        if item_id in rejected:
            removed["rejected"] += 1
            continue
        if category and any(within_category(category, d) for d in disliked):
            removed["dislike"] += 1
            continue
        if item_id == looking_at:
            removed["viewing"] += 1
            continue
        item_reasons: list[Reason] = []
        if info is not None and info.variants and where.in_stock_only:
            item_size = _size_for(info, size, sizes)
            verdict = _stock(info, item_size)
            if verdict == "out":
                removed["stock"] += 1
                continue
            if verdict == "not_in_size":
                removed["size"] += 1
                continue
            if verdict == "in_size":
                assert item_size is not None
                item_reasons.append(reasons.in_your_size(item_size, from_sizes=item_size != size))
        top_level = category.split(" > ")[0] if category else ""
        if top_level and per_category.get(top_level, 0) >= where.max_per_category:
            removed["diversity"] += 1
            continue
        per_category[top_level] = per_category.get(top_level, 0) + 1
        liked = _in(info, stated_categories)
        if liked:
            item_reasons.append(reasons.you_like(liked))
        chosen.append((item_id, float(score), info, item_reasons))
        if len(chosen) == n:
            break
    whys = _why(
        bundle,
        [item_id for item_id, *_ in chosen],
        past,
        personalized,
        catalog,
        catalog_of,
        liked={item_id: liked for item_id, _, info, _ in chosen if (liked := _in(info, stated_categories))},
        members=category_members or {},
    )
    decided = [
        DecidedItem(item_id, score, [*why, *item_reasons], info.title if info else "")
        for (item_id, score, info, item_reasons), why in zip(chosen, whys, strict=True)
    ]
    said.extend(reasons.left_out(removed, size=size, sizes=sizes, max_per_category=where.max_per_category))
    return decided


def _why(
    bundle: ModelBundle,
    chosen: list[str],
    past: Past,
    personalized: bool,
    catalog: dict[str, CatalogRow],
    catalog_of: CatalogReader,
    *,
    liked: Mapping[str, str] | None = None,
    members: Mapping[str, IntArray] | None = None,
) -> list[list[Reason]]:
    """Why each chosen item: bought before, like something they bought or looked at, often bought in
    the order after something they bought, how it sells (see `_selling`), or (when none of these holds)
    picked by the model from their history. `liked` names the stated favourite category each liked item
    is in, and `members` the model's items in each. The titles of the items named are read in one query."""
    last_event, owned = past.last_event, past.owned
    evidence: list[tuple[str, int, float] | None] = []
    had = bought = None
    for item_id in chosen:
        index = bundle.index.get(item_id)
        found: tuple[str, int, float] | None = None
        if index is not None and index not in owned and personalized:
            if had is None:
                had = np.zeros(len(bundle.item_ids), np.bool_)
                had[past.had] = True
            near = bundle.neighbours.nearest_marked(index, had)
            if near is not None:
                found = ("similar_items", *near)
            elif bundle.next_order is not None:
                if bought is None:
                    bought = np.zeros(len(bundle.item_ids), np.bool_)
                    bought[past.owned_array] = True
                before = strongest_marked(bundle.next_order, index, bought)
                found = None if before is None else ("next_order", *before)
        evidence.append(found)
    missing = [bundle.item_ids[found[1]] for found in evidence if found is not None]
    missing = [item_id for item_id in dict.fromkeys(missing) if item_id not in catalog]
    if missing:
        catalog.update(catalog_of(missing))
    whys: list[list[Reason]] = []
    for item_id, found in zip(chosen, evidence, strict=True):
        index = bundle.index.get(item_id)
        if index is not None and index in owned:
            kind, at, mid = last_event[index]
            title = catalog[item_id].title if item_id in catalog else item_id
            whys.append([reasons.bought_before(title, at, mid, item_id)])
        elif found is not None:
            signal, other_index, strength = found
            other = bundle.item_ids[other_index]
            kind, at, mid = last_event[other_index]
            title = catalog[other].title if other in catalog else other
            if signal == "similar_items":
                bought_it = kind == PURCHASE
                why = reasons.like_what_you_had(title, at, mid, other, bought=bought_it, similarity=strength)
            else:
                why = reasons.next_order(title, at, mid, other, weight=strength)
            whys.append([why])
        elif index is None or not personalized or bundle.popularity[index] >= bundle.popular_floor:
            category = (liked or {}).get(item_id)
            within = (members or {}).get(category) if category is not None else None
            whys.append([_selling(bundle, index, category, within)])
        else:
            whys.append([reasons.from_your_history(bundle.model.name, bundle.version)])
    return whys


def _selling(bundle: ModelBundle, index: int | None, category: str | None, within: IntArray | None) -> Reason:
    """How an item that was not picked for the person's own history sells, saying only what is true:
    "Popular with customers right now" for the shop's `POPULAR_ITEMS` best sellers; "Among the best
    sellers in X" for one of the `POPULAR_ITEMS` best sellers of a stated favourite category X that sold
    in the popularity window; else its rank among the shop's best sellers, or that few have bought it."""
    version = bundle.version
    if index is None:  # not in the model: nothing known of how it sells
        return reasons.unknown_seller(version)
    popularity = bundle.popularity
    mine = popularity[index]
    if mine >= bundle.popular_floor:
        return reasons.popular(version)
    if category is not None and within is not None and mine >= 1.0:
        rank = 1 + int(np.count_nonzero(popularity[within] > mine))
        if rank <= POPULAR_ITEMS:
            return reasons.best_in_category(version, category, rank)
    rank = 1 + int(np.count_nonzero(popularity > mine))
    if mine >= 1.0:
        return reasons.best_seller(version, rank)
    return reasons.few_bought(version, rank)


def category_members(bundle: ModelBundle, rows: Iterable[tuple[str, str]], category: str) -> IntArray:
    """The model's items (their indices in `bundle`) among `rows` (`(item_id, category)`, as
    `SqlCatalog.in_category` reads them) whose category is `category` or under it, sorted."""
    found = {
        index
        for item_id, item_category in rows
        if within_category(item_category, category) and (index := bundle.index.get(item_id)) is not None
    }
    return np.asarray(sorted(found), np.int64)


def catalog_rows(rows: Iterable[StockRow]) -> dict[str, CatalogRow]:
    """What the rules need of each item, from `SqlCatalog.stock`'s rows (one per variant)."""
    found: dict[str, CatalogRow] = {}
    for item_id, title, category, attributes, stock in rows:
        info = found.get(item_id)
        if info is None:
            info = found[item_id] = CatalogRow(readable_title(title), category)
        if attributes is not None:  # an item with no variants comes as one row of NULLs
            info.variants.append((attributes, stock))
    return found


@dataclass(frozen=True, slots=True)
class Past:
    """What a person did, in one model version's item space: kept between calls while it is current."""

    newest: int | None  # the newest interaction's id when read: the cache's check
    version: int
    history: History
    last_event: dict[int, tuple[int, datetime, str]]  # the newest event of each item
    owned: AbstractSet[int]
    owned_array: IntArray  # `owned`, sorted
    had: IntArray  # every item with an event, sorted
    personalized: bool  # they bought or viewed something the model knows: see `personalizes`

    @classmethod
    def of(cls, bundle: ModelBundle, newest: int | None, rows: Sequence[Any]) -> Past:
        history, last = _history(bundle, rows)
        owned = frozenset(int(i) for i in history.purchases().item_idx)
        return cls(
            newest=newest,
            version=bundle.version,
            history=history,
            last_event=last,
            owned=owned,
            owned_array=np.asarray(sorted(owned), np.int64),
            had=np.asarray(sorted(last), np.int64),
            personalized=bool(len(history.purchases()) or (history.kinds == VIEW).any()),
        )


def _history(
    bundle: ModelBundle, rows: Sequence[Any]
) -> tuple[History, dict[int, tuple[int, datetime, str]]]:
    """The person's interactions in the model's item space, and the newest event of each item."""
    item_idx, times, kinds = [], [], []
    last: dict[int, tuple[int, datetime, str]] = {}
    seen: set[tuple[int, str]] = set()
    for item_id, kind, at, message_id in rows:
        index = bundle.index.get(item_id)
        if index is None or kind == RETURN or (index, message_id) in seen:
            continue
        seen.add((index, message_id))
        item_idx.append(index)
        times.append(at.timestamp())
        kinds.append(kind)
        if kind == PURCHASE or index not in last or last[index][0] != PURCHASE:
            last[index] = (kind, at, message_id)
    history = History(
        np.asarray(item_idx, np.int64),
        np.asarray(times, np.float64),
        np.ones(len(item_idx)),
        np.asarray(kinds, np.int64),
    )
    return history, last


def stated(traits: dict[str, ResolvedTrait], key: str) -> list[str]:
    trait = traits.get(key)
    if trait is None or trait.source != "stated":
        return []
    value = trait.value
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _in(info: CatalogRow | None, categories: list[str]) -> str | None:
    """The first of `categories` that the item is in (its category or one above it), if any."""
    if info is None or not info.category:
        return None
    for category in categories:
        if within_category(info.category, category):
            return category
    return None


def _stock(info: CatalogRow, size: str | None) -> str:
    """`out` (no variant in stock), `not_in_size`, `in_size`, or `ok` (stock not tracked, or no size)."""
    tracked = [(attrs, stock) for attrs, stock in info.variants if stock is not None]
    if not tracked:
        return "ok"
    if all(stock <= 0 for _, stock in tracked):
        return "out"
    if size is None:
        return "ok"
    sized = [(attrs, stock) for attrs, stock in tracked if "size" in attrs]
    if not sized:
        return "ok"
    if any(str(attrs["size"]).lower() == size.lower() and stock > 0 for attrs, stock in sized):
        return "in_size"
    return "not_in_size"


def _size_for(info: CatalogRow, size: str | None, sizes: dict[str, str]) -> str | None:
    """The person's stated size for this item: from `sizes` when a key names the item's category or a
    word of its title (`{"trousers": "34"}`), else their one `size`."""
    if sizes:
        words = {w for part in info.category.lower().split(" > ") for w in (part, *part.split())}
        words |= set(info.title.lower().split())
        for kind, value in sizes.items():
            if kind in words or kind.rstrip("s") in words:
                return value
    return size


def paused(traits: dict[str, ResolvedTrait], where: Placement) -> Reason | None:
    """For a channel that reaches out (email, staff), the person's stated pause or "never"."""
    if where.purpose is None:
        return None
    frequency = traits.get("contact_frequency")
    if frequency is not None and frequency.source == "stated" and frequency.value == "never":
        return reasons.never_contact()
    pause = traits.get("pause_until")
    if pause is not None and pause.source == "stated" and isinstance(pause.value, str):
        try:
            until = date.fromisoformat(pause.value[:10])
        except ValueError:
            return None
        if until >= datetime.now(UTC).date():
            return reasons.paused_until(until)
    return None


def viewing(context: Mapping[str, Any] | None) -> str | None:
    """The item the person is looking at, as the call's context names it (`{"item_id": ...}`): never
    shown to them beside itself."""
    item_id = (context or {}).get("item_id")
    return item_id if isinstance(item_id, str) else None


def personalizes(past: Past | None, *, consented: bool, baseline: bool) -> bool:
    """Whether a decision is personalized (ranked by the model from the person's own history): only
    with their consent to personalization, outside the holdout and any popularity arm (`baseline`), and
    only when they have bought or looked at something the model knows (`past.personalized`). Every other
    decision is the popularity baseline, and its reasons say which and why."""
    return consented and not baseline and past is not None and past.personalized
