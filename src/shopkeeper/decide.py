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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, bindparam, func, select

from shopkeeper.decisions import Decision, DecisionLog, Reason
from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.service import HOLDOUT, ExperimentService
from shopkeeper.placements import DEFAULT_PLACEMENTS, Placement, placement_for
from shopkeeper.privacy.consent import PURPOSE_WORDS, Purposes
from shopkeeper.profiles.service import ProfileService
from shopkeeper.profiles.traits import ResolvedTrait
from shopkeeper.recommend.base import FloatArray, IntArray, Recommender, top_n
from shopkeeper.rules import Past, apply_rules, paused, stated
from shopkeeper.store import Store
from shopkeeper.store.models import SqlModelRegistry
from shopkeeper.store.schema import interactions
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
        self._pasts: dict[int, Past] = {}
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
            asked = ("personalization",) if where.purpose is None else ("personalization", where.purpose)
            allowed = self._purposes.allows_all(conn, person_id, asked)
            if where.purpose is not None and not allowed[where.purpose]:
                return self._suppressed(where, person_id, where.purpose)
            consented = allowed["personalization"]
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
            pause = paused(traits, where)
            if pause is not None:
                return Decision(str(uuid.uuid4()), where.name, person_id, [], [pause], None, False)
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

    def _past(self, bundle: ModelBundle, person_id: int, conn: Connection) -> Past:
        """The person's interactions, from a small cache that is checked against the store every call
        (one indexed query), so a purchase a moment ago is always seen."""
        newest = conn.scalar(_NEWEST_INTERACTION, {"person": person_id})
        cached = self._pasts.get(person_id)
        if cached is not None and cached.newest == newest and cached.version == bundle.version:
            return cached
        past = Past.of(bundle, newest, conn.execute(_HISTORY, {"person": person_id}).all())
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
        past: Past | None,
        conn: Connection,
        *,
        consented: bool = True,
        baseline: Reason | None = None,
    ) -> Decision:
        past = past or Past.of(bundle, None, [])
        history = past.history
        personalized = past.personalized and consented and baseline is None
        stated_categories = stated(traits, "favourite_categories")
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
        items = apply_rules(
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
