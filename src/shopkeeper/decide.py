"""decide: the one pipeline every channel calls, so web, email and staff see the same person.

It resolves the person, reads their resolved traits and their history, scores items with the current
model version, applies the rules (in stock in the stated size, never stated dislikes or rejected items,
repeats or not, a diversity cap per category), explains every item, and logs the decision as an exposure.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, bindparam, func, select

from shopkeeper.decisions import DecidedItem, Decision, DecisionLog, Reason
from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.service import HOLDOUT, ExperimentService
from shopkeeper.placements import DEFAULT_PLACEMENTS, Placement, placement_for
from shopkeeper.privacy.consent import PURPOSE_WORDS, Purposes
from shopkeeper.profiles.service import ProfileService
from shopkeeper.profiles.traits import ResolvedTrait
from shopkeeper.recommend.base import FloatArray, History, IntArray, Recommender, top_n
from shopkeeper.store import Store
from shopkeeper.store.interactions import PURCHASE, RETURN, VIEW
from shopkeeper.store.models import SqlModelRegistry
from shopkeeper.store.schema import interactions, item_variants, items
from shopkeeper.training import ModelBundle

CANDIDATES_PER_SLOT = 8
HISTORY_CACHE = 10_000
# The traits the rules read; only these are fetched and resolved.
RULE_TRAITS = (
    "size",
    "sizes",
    "disliked_categories",
    "rejected_items",
    "favourite_categories",
    "pause_until",
    "contact_frequency",
)

_NEWEST_INTERACTION = select(func.max(interactions.c.id)).where(
    interactions.c.person_id == bindparam("person")
)
_HISTORY = (
    select(interactions.c.item_id, interactions.c.kind, interactions.c.at, interactions.c.message_id)
    .where(interactions.c.person_id == bindparam("person"))
    .order_by(interactions.c.at, interactions.c.id)
)
_CATALOG = (
    select(
        items.c.item_id, items.c.title, items.c.category, item_variants.c.attributes, item_variants.c.stock
    )
    .select_from(items.outerjoin(item_variants, item_variants.c.item_id == items.c.item_id))
    .where(items.c.item_id.in_(bindparam("ids", expanding=True)))
)


class _Catalog:
    """What the rules need of an item: its title, category, and (when it has variants) their stock."""

    __slots__ = ("category", "title", "variants")

    def __init__(self, title: str, category: str) -> None:
        self.title = title
        self.category = category
        self.variants: list[tuple[dict[str, Any], int | None]] = []


class Decider:
    """Makes decisions. One per process; thread-safe. It picks up newly published models by itself."""

    def __init__(
        self,
        store: Store,
        profiles: ProfileService,
        load_model: Callable[[Path], Recommender],
        *,
        placements: dict[str, Placement] | None = None,
        poll_seconds: float = 5.0,
        log: DecisionLog | None = None,
        purposes: Purposes | None = None,
        experiments: ExperimentService | None = None,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._load_model = load_model
        self._placements = placements or DEFAULT_PLACEMENTS
        self._registry = SqlModelRegistry(store.engine)
        self._poll_seconds = poll_seconds
        self._checked = float("-inf")
        self._bundle: ModelBundle | None = None
        self._lock = threading.Lock()
        self.log = log or DecisionLog(store)
        self._pasts: dict[int, _Past] = {}
        self._purposes = purposes or Purposes()
        self.experiments = experiments or ExperimentService(store, profiles)
        self._popular_top: dict[tuple[int, int], tuple[IntArray, FloatArray]] = {}

    # ---- models ----------------------------------------------------------------------------------

    def bundle(self) -> ModelBundle | None:
        """The newest published model, checked every `poll_seconds`; swapped in whole."""
        if time.monotonic() - self._checked < self._poll_seconds:
            return self._bundle
        with self._lock:
            if time.monotonic() - self._checked < self._poll_seconds:
                return self._bundle
            latest = self._registry.latest_version()
            if latest is not None and (self._bundle is None or self._bundle.version != latest):
                with tempfile.TemporaryDirectory() as tmp:
                    record = self._registry.unpack(latest, Path(tmp))
                    self._bundle = ModelBundle.load(Path(tmp), latest, record.summary, self._load_model)
            self._checked = time.monotonic()
        return self._bundle

    def refresh(self) -> None:
        """Look for a new model version now."""
        self._checked = float("-inf")

    def forget(self, person_ids: Sequence[int]) -> None:
        """Drop what this process keeps about these people (their history cache): after an erasure, or a
        change of consent or preferences."""
        for person_id in person_ids:
            self._pasts.pop(person_id, None)

    # ---- deciding --------------------------------------------------------------------------------

    def decide(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        placement: str = "web",
        n: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> Decision:
        where = placement_for(placement, self._placements)
        n = where.n if n is None else n
        if not 1 <= n <= where.max_n:
            raise InvalidInput(f"n must be between 1 and {where.max_n} for {placement}", field="n")
        if user_id is None and anonymous_id is None:
            raise InvalidInput("decide needs userId or anonymousId", field="userId")
        external = user_id if user_id is not None else anonymous_id
        bundle = self.bundle()
        # One read connection for the whole decision: opening one costs more than most of its queries.
        with self._store.engine.connect() as conn:
            person_id = self._find(user_id, anonymous_id, conn)
            # Consent is checked here, at the point of use: the channel's purpose first (an email needs
            # email_marketing), then personalization, without which nothing about the person is used.
            if where.purpose is not None and not self._purposes.allows(conn, person_id, where.purpose):
                return self._suppressed(where, person_id, where.purpose)
            consented = self._purposes.allows(conn, person_id, "personalization")
            # The universal holdout and any experiment on this placement: who is the unit, which arm.
            arm = self.experiments.assign(
                conn, where.name, person_id, user_id, anonymous_id, consented=consented
            )
            where, n = arm.placement(where, n)
            traits = (
                self._profiles.traits_of(person_id, keys=RULE_TRAITS, conn=conn)
                if person_id is not None and consented
                else {}
            )
            paused = _paused(traits, where)
            if paused is not None:
                return Decision(str(uuid.uuid4()), where.name, person_id, [], [paused], None, False)
            held_out = arm.cohort == HOLDOUT
            if held_out:
                traits = {}  # the holdout sees the shop's plain baseline: nothing about them is used
            if bundle is None:
                decision = self._without_model(where, n, person_id, traits)
            else:
                past = (
                    self._past(bundle, person_id, conn)
                    if person_id is not None and consented and not held_out
                    else None
                )
                decision = self._with_model(
                    bundle,
                    where,
                    n,
                    person_id,
                    traits,
                    past,
                    conn,
                    consented=consented,
                    baseline=arm.baseline,
                )
            if arm.note is not None:
                decision.reasons.append(arm.note)
            decision = replace(decision, cohort=arm.cohort, experiment=arm.experiment, arm=arm.arm)
        self.log.log(
            {
                "decision_id": decision.decision_id,
                "person_id": person_id,
                "external_id": external,
                "placement": where.name,
                "model_version": decision.model_version,
                "personalized": int(decision.personalized),
                "items": orjson.dumps([i.to_json() for i in decision.items]).decode(),
                "reasons": orjson.dumps([r.to_json() for r in decision.reasons]).decode(),
                "at": datetime.now(UTC),
                "unit": arm.unit,
                "cohort": arm.cohort,
                "experiment": arm.experiment,
                "arm": arm.arm,
                "propensity": arm.propensity,
            }
        )
        return decision

    def _find(self, user_id: str | None, anonymous_id: str | None, conn: Connection) -> int | None:
        for ref in (user_id, anonymous_id):
            if ref is not None:
                found = self._store.identities.find_person(ref, conn)
                if found is not None:
                    return found
        return None

    def _past(self, bundle: ModelBundle, person_id: int, conn: Connection) -> _Past:
        """The person's interactions, from a small cache that is checked against the store every call
        (one indexed query), so a purchase a moment ago is always seen."""
        newest = conn.scalar(_NEWEST_INTERACTION, {"person": person_id})
        cached = self._pasts.get(person_id)
        if cached is not None and cached.newest == newest and cached.version == bundle.version:
            return cached
        past = _Past.of(bundle, newest, conn.execute(_HISTORY, {"person": person_id}).all())
        if len(self._pasts) >= HISTORY_CACHE:
            self._pasts.pop(next(iter(self._pasts)), None)
        self._pasts[person_id] = past
        return past

    def _with_model(
        self,
        bundle: ModelBundle,
        where: Placement,
        n: int,
        person_id: int | None,
        traits: dict[str, ResolvedTrait],
        past: _Past | None,
        conn: Connection,
        *,
        consented: bool = True,
        baseline: Reason | None = None,
    ) -> Decision:
        past = past or _Past.of(bundle, None, [])
        history = past.history
        personalized = past.personalized and consented and baseline is None
        stated_categories = _stated(traits, "favourite_categories")
        reasons: list[Reason] = []
        how_many = (50 if stated_categories and not personalized else CANDIDATES_PER_SLOT) * n
        exclude = past.owned_array if not where.repeats else None
        if personalized:
            now = max(bundle.trained_until.timestamp(), float(history.times.max()) if len(history) else 0.0)
            scores = bundle.model.score(history, now)
            picks, picked_scores = top_n(scores, how_many, exclude=exclude)
            reasons.append(
                Reason(
                    f"Ranked for you by the {bundle.model.name} model (version {bundle.version}, "
                    f"trained on data to {bundle.trained_until:%d %b %Y})",
                    {"model": bundle.model.name, "model_version": bundle.version},
                )
            )
        elif baseline is not None and consented:
            # The holdout, or an experiment's popularity arm: the non-personal baseline, said plainly.
            picks, picked_scores = self._popular(bundle, how_many, exclude)
            reasons.append(Reason(baseline.text, {**baseline.provenance, "model_version": bundle.version}))
        elif not consented:
            picks, picked_scores = self._popular(bundle, how_many, exclude)
            reasons.append(
                Reason(
                    "Popular in the shop right now. You haven't agreed to personalization, so nothing "
                    "about you was used to choose these",
                    {"model": "popularity", "model_version": bundle.version, "consent": "personalization"},
                )
            )
        else:
            picks, picked_scores = self._popular(bundle, how_many, exclude)
            reasons.append(
                Reason(
                    "Not personalized yet: no purchases or views to go on, so these are popular right now"
                    + (" in the categories you told us you like" if stated_categories else ""),
                    {
                        "model": "popularity",
                        "model_version": bundle.version,
                        **(
                            {"trait": "favourite_categories", "source": "stated"} if stated_categories else {}
                        ),
                    },
                )
            )
        candidates = [bundle.item_ids[i] for i in picks]
        items = self._apply_rules(
            bundle,
            where,
            n,
            traits,
            candidates,
            picked_scores,
            past,
            reasons,
            conn,
            personalized=personalized,
            stated_categories=stated_categories,
        )
        owned = past.owned
        if not where.repeats and owned:
            reasons.append(
                Reason(
                    f"Left out {len(owned)} items you already bought ({where.name} shows new things)",
                    {"rule": "exclude_owned", "count": len(owned)},
                )
            )
        return Decision(
            str(uuid.uuid4()), where.name, person_id, items, reasons, bundle.version, personalized
        )

    def _popular(
        self, bundle: ModelBundle, how_many: int, exclude: IntArray | None
    ) -> tuple[IntArray, FloatArray]:
        """`top_n` of the bundle's popularity; the same for every visitor, so kept per version."""
        if exclude is not None and len(exclude):
            return top_n(bundle.popularity.astype(np.float64, copy=True), how_many, exclude=exclude)
        key = (bundle.version, how_many)
        found = self._popular_top.get(key)
        if found is None:
            if len(self._popular_top) >= 64:
                self._popular_top.clear()
            found = self._popular_top[key] = top_n(bundle.popularity.astype(np.float64, copy=True), how_many)
        return found

    def _apply_rules(
        self,
        bundle: ModelBundle,
        where: Placement,
        n: int,
        traits: dict[str, ResolvedTrait],
        candidates: list[str],
        scores: np.ndarray,
        past: _Past,
        reasons: list[Reason],
        conn: Connection,
        *,
        personalized: bool,
        stated_categories: list[str],
    ) -> list[DecidedItem]:
        size_trait = traits.get("size")
        size = str(size_trait.value) if size_trait is not None and size_trait.source == "stated" else None
        sizes_trait = traits.get("sizes")
        sizes = (
            {str(k).lower(): str(v) for k, v in sizes_trait.value.items()}
            if sizes_trait is not None
            and sizes_trait.source == "stated"
            and isinstance(sizes_trait.value, dict)
            else {}
        )
        disliked = set(_stated(traits, "disliked_categories"))
        rejected = set(_stated(traits, "rejected_items"))
        removed = {"dislike": 0, "rejected": 0, "stock": 0, "size": 0, "diversity": 0}
        per_category: dict[str, int] = {}
        ranked = list(zip(candidates, scores.tolist(), strict=True))
        # Catalog rows are read as the rules reach the candidates, a chunk at a time: most decisions
        # stop within the first `n` or so of their `8 n` candidates.
        catalog: dict[str, _Catalog] = {}
        read = 0
        if stated_categories and not personalized:
            # Cold start within the stated categories: those come first, popularity orders each group.
            catalog = _read_catalog(conn, candidates)
            read = len(candidates)
            ranked.sort(key=lambda pair: (_in(catalog.get(pair[0]), stated_categories) is None, -pair[1]))
        chosen: list[tuple[str, float, _Catalog | None, list[Reason]]] = []
        for position, (item_id, score) in enumerate(ranked):
            if position >= read:
                chunk = [c for c, _ in ranked[read : read + max(read, 2 * n)]]
                catalog.update(_read_catalog(conn, chunk))
                read += len(chunk)
            info = catalog.get(item_id)
            category = info.category if info else ""
            if item_id in rejected:
                removed["rejected"] += 1
                continue
            if category and any(category == d or category.startswith(d + " > ") for d in disliked):
                removed["dislike"] += 1
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
                    item_reasons.append(
                        Reason(
                            f"In stock in your size {item_size}",
                            {
                                "trait": "sizes" if item_size != size else "size",
                                "source": "stated",
                                "rule": "in_stock_in_size",
                            },
                        )
                    )
            top_level = category.split(" > ")[0] if category else ""
            if top_level and per_category.get(top_level, 0) >= where.max_per_category:
                removed["diversity"] += 1
                continue
            per_category[top_level] = per_category.get(top_level, 0) + 1
            liked = _in(info, stated_categories)
            if liked:
                item_reasons.append(
                    Reason(
                        f"You told us you like {liked}", {"trait": "favourite_categories", "source": "stated"}
                    )
                )
            chosen.append((item_id, float(score), info, item_reasons))
            if len(chosen) == n:
                break
        whys = self._why(bundle, [item_id for item_id, *_ in chosen], past, personalized, catalog, conn)
        decided = [
            DecidedItem(item_id, score, [*why, *item_reasons], info.title if info else "")
            for (item_id, score, info, item_reasons), why in zip(chosen, whys, strict=True)
        ]
        notes = {
            "rejected": ("Left out {} items you told us are not for you", {"trait": "rejected_items"}),
            "dislike": (
                "Left out {} items in categories you told us you don't like",
                {"trait": "disliked_categories"},
            ),
            "stock": ("Left out {} items that are out of stock", {"rule": "in_stock"}),
            "size": (
                "Left out {} items not in stock in your size "
                + ", ".join([*(f"{v} ({k})" for k, v in sizes.items()), *([size] if size else [])]),
                {"trait": "size", "rule": "in_size"},
            ),
            "diversity": (
                f"Left out {{}} items to show at most {where.max_per_category} per category",
                {"rule": "diversity_cap"},
            ),
        }
        for key, count in removed.items():
            if count:
                text, provenance = notes[key]
                source = {"source": "stated"} if "trait" in provenance else {}
                reasons.append(Reason(text.format(count), {**provenance, **source, "count": count}))
        return decided

    def _why(
        self,
        bundle: ModelBundle,
        chosen: list[str],
        past: _Past,
        personalized: bool,
        catalog: dict[str, _Catalog],
        conn: Connection,
    ) -> list[list[Reason]]:
        """Why each chosen item: bought before, like something they bought or looked at, or popular.
        The titles of the items they are like are read in one query."""
        last_event, owned = past.last_event, past.owned
        nearest: list[tuple[int, float] | None] = []
        had = None
        for item_id in chosen:
            index = bundle.index.get(item_id)
            near = None
            if index is not None and index not in owned and personalized:
                if had is None:
                    had = np.zeros(len(bundle.item_ids), np.bool_)
                    had[past.had] = True
                near = bundle.neighbours.nearest_marked(index, had)
            nearest.append(near)
        missing = [bundle.item_ids[near[0]] for near in nearest if near is not None]
        missing = [item_id for item_id in dict.fromkeys(missing) if item_id not in catalog]
        if missing:
            catalog.update(_read_catalog(conn, missing))
        whys: list[list[Reason]] = []
        for item_id, near in zip(chosen, nearest, strict=True):
            index = bundle.index.get(item_id)
            if index is not None and index in owned:
                kind, at, mid = last_event[index]
                title = catalog[item_id].title if item_id in catalog else item_id
                whys.append(
                    [
                        Reason(
                            f"Because you bought {title} on {_day(at)}",
                            {"signal": "repeat", "event": mid, "item_id": item_id},
                        )
                    ]
                )
            elif near is not None:
                other = bundle.item_ids[near[0]]
                kind, at, mid = last_event[near[0]]
                verb = "bought" if kind == PURCHASE else "looked at"
                title = catalog[other].title if other in catalog else other
                whys.append(
                    [
                        Reason(
                            f"Because you {verb} {title} on {_day(at)}",
                            {
                                "signal": "similar_items",
                                "event": mid,
                                "item_id": other,
                                "similarity": round(near[1], 3),
                            },
                        )
                    ]
                )
            else:
                whys.append(
                    [
                        Reason(
                            "Popular with customers right now",
                            {"model": "popularity", "model_version": bundle.version},
                        )
                    ]
                )
        return whys

    def _suppressed(self, where: Placement, person_id: int | None, purpose: str) -> Decision:
        """Nothing for a channel the person has not agreed to; not logged, since nothing is shown."""
        words = PURPOSE_WORDS.get(purpose, purpose.replace("_", " "))
        reason = Reason(
            f"Nothing to show in {where.name}: this person has not agreed to {words}",
            {"consent": purpose, "granted": False},
        )
        return Decision(str(uuid.uuid4()), where.name, person_id, [], [reason], None, False)

    def _without_model(
        self, where: Placement, n: int, person_id: int | None, traits: dict[str, ResolvedTrait]
    ) -> Decision:
        reason = Reason(
            "No model has been trained yet (run `shopkeeper train`), so nothing is shown", {"model": None}
        )
        return Decision(str(uuid.uuid4()), where.name, person_id, [], [reason], None, False)


def _read_catalog(conn: Connection, item_ids: Sequence[str]) -> dict[str, _Catalog]:
    """What the rules need of these items, in one query; items not in the catalog are left out."""
    if not item_ids:
        return {}
    found: dict[str, _Catalog] = {}
    for item_id, title, category, attributes, stock in conn.execute(_CATALOG, {"ids": list(item_ids)}):
        info = found.get(item_id)
        if info is None:
            info = found[item_id] = _Catalog(
                title.strip().capitalize() if title.isupper() else title, category
            )
        if attributes is not None:  # an item with no variants comes as one row of NULLs
            info.variants.append((orjson.loads(attributes), stock))
    return found


@dataclass(frozen=True, slots=True)
class _Past:
    """What a person did, in one model version's item space: kept between calls while it is current."""

    newest: int | None  # the newest interaction's id when read: the cache's check
    version: int
    history: History
    last_event: dict[int, tuple[int, datetime, str]]  # the newest event of each item
    owned: AbstractSet[int]
    owned_array: IntArray  # `owned`, sorted
    had: IntArray  # every item with an event, sorted
    personalized: bool

    @classmethod
    def of(cls, bundle: ModelBundle, newest: int | None, rows: Sequence[Any]) -> _Past:
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


def _stated(traits: dict[str, ResolvedTrait], key: str) -> list[str]:
    trait = traits.get(key)
    if trait is None or trait.source != "stated":
        return []
    value = trait.value
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _in(info: _Catalog | None, categories: list[str]) -> str | None:
    if info is None or not info.category:
        return None
    for category in categories:
        if info.category == category or info.category.startswith(category + " > "):
            return category
    return None


def _stock(info: _Catalog, size: str | None) -> str:
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


def _size_for(info: _Catalog, size: str | None, sizes: dict[str, str]) -> str | None:
    """The person's stated size for this item: from `sizes` when a key names the item's category or a
    word of its title (`{"trousers": "34"}`), else their one `size`."""
    if sizes:
        words = {w for part in info.category.lower().split(" > ") for w in (part, *part.split())}
        words |= set(info.title.lower().split())
        for kind, value in sizes.items():
            if kind in words or kind.rstrip("s") in words:
                return value
    return size


def _paused(traits: dict[str, ResolvedTrait], where: Placement) -> Reason | None:
    """For a channel that reaches out (email, staff), the person's stated pause or "never"."""
    if where.purpose is None:
        return None
    frequency = traits.get("contact_frequency")
    if frequency is not None and frequency.source == "stated" and frequency.value == "never":
        return Reason(
            "Nothing to send: you told us not to contact you",
            {"trait": "contact_frequency", "source": "stated"},
        )
    pause = traits.get("pause_until")
    if pause is not None and pause.source == "stated" and isinstance(pause.value, str):
        try:
            until = date.fromisoformat(pause.value[:10])
        except ValueError:
            return None
        if until >= datetime.now(UTC).date():
            return Reason(
                f"Nothing to send: you asked us to pause until {until.day} {until:%b %Y}",
                {"trait": "pause_until", "source": "stated"},
            )
    return None


def _day(at: datetime) -> str:
    return f"{at.day} {at:%b %Y}"
