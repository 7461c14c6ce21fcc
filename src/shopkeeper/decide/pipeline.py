"""decide: the one pipeline every channel calls, so web, email and staff see the same person.

It resolves the person, reads their resolved traits and their history, scores items with the current
model version, applies the rules (in stock in the stated size, never stated dislikes or rejected items,
repeats or not, a diversity cap per category, not the item the call's context says they are looking at),
explains every item, and logs the decision, with its context, as an exposure.

What it reads about a person, and the model's ranking for them, is kept between calls and checked on
every call with one statement (`shopkeeper.decide.cache`): a known person with nothing new costs that
statement, the rules and the explanations. After a purchase or any other change, their next call reads
them afresh.
"""

from __future__ import annotations

import logging
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

from shopkeeper.decide import reasons
from shopkeeper.decide.cache import CatalogCache, PersonState, PersonStates
from shopkeeper.decide.log import Decision, DecisionLog
from shopkeeper.decide.placements import DEFAULT_PLACEMENTS, Placement, placement_for, with_arm
from shopkeeper.decide.reasons import Reason
from shopkeeper.decide.rules import (
    CatalogRow,
    Past,
    apply_rules,
    catalog_rows,
    category_members,
    paused,
    personalizes,
    stated,
)
from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.experiments import HOLDOUT
from shopkeeper.experiments.service import Assignment, ExperimentService, unit_from
from shopkeeper.privacy.consent import Purposes
from shopkeeper.profiles.service import ProfileService
from shopkeeper.profiles.traits import ResolvedTrait
from shopkeeper.recommend.base import FloatArray, IntArray, Recommender, top_n
from shopkeeper.recommend.bundle import ModelBundle
from shopkeeper.store import Store
from shopkeeper.store.models import SqlModelRegistry
from shopkeeper.store.serving import Found, Lookup

log = logging.getLogger("shopkeeper.decide")
THIN = 3  # fewer items than this in a person's history: their persona's favourites come first
PERSONA = "\x00persona"  # the persona's favourites among the first-choice members (no category's name)

CANDIDATES_PER_SLOT = 8
PEOPLE_KEPT = 10_000  # people whose state a process keeps (least recently decided go first)
RANKED_KEEP = 100  # the model's best items kept per person: enough for n = 12 at 8 candidates a slot
# The traits the rules read; only these are fetched and resolved.
RULE_TRAITS = (
    "persona",  # the persona's favourites for a person with little history, and a reason that cites it
    "size",
    "sizes",
    "disliked_categories",
    "rejected_items",
    "favourite_categories",
    "pause_until",
    "contact_frequency",
)
CONTEXT_BYTES = 8192  # the most of a call's context logged with its decision (as JSON)


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
        warm_people: int = 0,
        on_prepared: Callable[[], None] | None = None,
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
        self._purposes = purposes or Purposes()
        self._purpose_names = self._purposes.names
        self._default_consent = self._purposes.defaults(self._purpose_names)
        self._lookup = Lookup(store.engine)
        self._states = PersonStates(max(PEOPLE_KEPT, warm_people))
        self._warm_people = warm_people
        self._on_prepared = on_prepared
        self.warmed: int | None = None  # the model version whose preparing finished
        self._unloadable: int | None = None  # the newest version that failed to load
        self._erasures_seen: int | None = None  # the newest audit log id looked at for erasures
        self._closed = threading.Event()
        self._catalog = CatalogCache(self._read_catalog)
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
            self._drop_erased()
            latest = self._registry.latest_version()
            if (
                latest is not None
                and latest != self._unloadable
                and (self._bundle is None or self._bundle.version != latest)
            ):
                self._load(latest)
            self._checked = time.monotonic()
        return self._bundle

    def _load(self, version: int) -> None:
        """Swap in this version, and prepare its decisions. A version that cannot be loaded (written by
        an incompatible release, say) is reported once and skipped: deciding goes on with the one
        loaded before, until a newer version is published."""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                record = self._registry.unpack(version, Path(tmp))
                bundle = ModelBundle.load(Path(tmp), version, record.summary, self._load_model)
        except Exception as exc:  # any failure to load: keep serving
            self._unloadable = version
            log.error(
                "model version %d could not be loaded (%s: %s); still deciding with version %s",
                version,
                type(exc).__name__,
                exc,
                self._bundle.version if self._bundle is not None else "none",
            )
            return
        self._bundle = bundle
        if self._warm_people > 0:
            threading.Thread(target=self._warm, args=(bundle,), name="shopkeeper-warm", daemon=True).start()

    def _drop_erased(self) -> None:
        """Drop the people erased through any process since the last look (the audit log names each
        erasure), so that nothing about them stays in this process's memory either."""
        serving = self._store.serving
        if self._erasures_seen is None:
            self._erasures_seen = serving.newest_audit_id()
            return
        rows = serving.erasures_after(self._erasures_seen)
        if rows:
            self._erasures_seen = max(audit_id for audit_id, _ in rows)
            self.erased([person_id for _, person_id in rows if person_id is not None])

    def _warm(self, bundle: ModelBundle) -> None:
        """Prepare the most recently active people's states and rankings for a new model version, so
        that their first decision costs what later ones do. It reads as decide reads (so it also brings
        profiles that wait for a rebuild up to date), and stops when the model is replaced or the decider
        closes."""
        try:
            for person_id in self._store.serving.recently_active(self._warm_people):
                if self._closed.is_set() or self._bundle is not bundle:
                    return
                state = self._state(self._lookup.stamp_of(person_id))
                if state.consent["personalization"]:
                    past = self._past(bundle, state)
                    if personalizes(past, consented=True, baseline=False):
                        self._ranked(bundle, state, past, RANKED_KEEP, None)
            self.warmed = bundle.version
            if self._on_prepared is not None:
                self._on_prepared()
        except Exception:  # the store closed under it, say: preparing is only ever an optimisation
            return

    def close(self) -> None:
        """Stop preparing decisions in the background."""
        self._closed.set()

    @property
    def version(self) -> int | None:
        """The model version this process decides with (None before one is loaded)."""
        return self._bundle.version if self._bundle is not None else None

    def refresh(self) -> None:
        """Look for a new model version now."""
        self._checked = float("-inf")

    def forget(self, person_ids: Sequence[int]) -> None:
        """Drop what this process keeps about these people now (after a change of consent or
        preferences: the next call's stamp would say so too)."""
        self._states.forget(person_ids)

    def erased(self, person_ids: Sequence[int]) -> None:
        """Drop what this process keeps about these erased people, for good. Other processes can no
        longer find them; what they kept is never used again and ages out."""
        self._states.forget(person_ids, erased=True)

    def _read_catalog(self, item_ids: Sequence[str]) -> dict[str, CatalogRow]:
        return catalog_rows(self._store.catalog.stock(item_ids))

    # ---- deciding --------------------------------------------------------------------------------

    def decide(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        placement: str = "web",
        n: int | None = None,
        context: dict[str, Any] | None = None,
        log: bool = True,
    ) -> Decision:
        """What to show the person in `placement`, and why. `context` is what the caller knows of the
        moment (the page, the item being viewed, ...): logged with the decision, and read by the rules
        (`shopkeeper.decide.rules.viewing`). `log=False`: a look that shows nobody anything (a template's
        preview), so not an exposure."""
        where = placement_for(placement, self._placements)
        logged_context = _context_json(context)
        n = where.n if n is None else n
        if not 1 <= n <= where.max_n:
            raise InvalidInput(f"n must be between 1 and {where.max_n} for {placement}", field="n")
        if user_id is None and anonymous_id is None:
            raise InvalidInput("decide needs userId or anonymousId", field="userId")
        external = user_id if user_id is not None else anonymous_id
        assert external is not None
        bundle = self.bundle()
        # One statement finds the person and says whether what is kept about them is current; another
        # says whether the kept catalog is. Everything else is read only when it changed.
        found, catalog = self._lookup.check((user_id, anonymous_id))
        self._catalog.check(catalog)
        state = self._state(found) if found is not None else None
        person_id = found.person_id if found is not None else None
        # Consent is checked here, at the point of use: the channel's purpose first (an email needs
        # email_marketing), then personalization, without which nothing about the person is used.
        allowed = state.consent if state is not None else self._default_consent
        if where.purpose is not None and not allowed.get(where.purpose, False):
            return self._suppressed(where, person_id, where.purpose)
        consented = allowed["personalization"]
        # The universal holdout and any experiment on this placement: who is the unit, which arm.
        unit = unit_from(state.unit_ids if state is not None else {}, external)
        arm = self.experiments.assign(
            None, where.name, person_id, user_id, anonymous_id, consented=consented, unit=unit
        )
        where, n = with_arm(where, n, arm.options)
        traits = state.traits if state is not None and consented else {}
        pause = paused(traits, where)
        if pause is not None:
            return Decision(str(uuid.uuid4()), where.name, person_id, [], [pause], None, False)
        held_out = arm.cohort == HOLDOUT
        outside = where.audience is not None and consented and not self._in_audience(where, person_id)
        if held_out or outside:
            traits = {}  # the holdout, and people outside the placement's audience, see the plain baseline
        if bundle is None:
            decision = Decision(
                str(uuid.uuid4()), where.name, person_id, [], [reasons.no_model()], None, False
            )
        else:
            mine = state if state is not None and consented and not held_out and not outside else None
            decision = self._with_model(
                bundle,
                where,
                n,
                person_id,
                traits,
                mine,
                consented=consented,
                arm=arm,
                context=context,
                outside=outside,
            )
        note = reasons.in_experiment(arm)
        if note is not None:
            decision.reasons.append(note)
        decision = replace(decision, cohort=arm.cohort, experiment=arm.experiment, arm=arm.arm)
        if not log:
            return decision
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
                "context": logged_context,
            }
        )
        return decision

    def _state(self, found: Found) -> PersonState:
        """What is kept about the person, read afresh when their stamp changed: their consent to every
        purpose, the rule traits (only with personalization consent), their experiment unit's ids."""
        state = self._states.get(found)
        if state is not None:
            return state
        before = self._states.previous(found.person_id)
        if (
            before is not None
            and before.found.said_the_same(found)
            and self._lookup.only_actions_since(found.person_id, before.found.newest_event())
        ):
            # Only actions since (views, carts, orders): what the rules read is what the person stated,
            # consented to and is, all unchanged, so only their history and ranking are read again. Their
            # profile's rebuild (for the guesses those actions change) is left to the next profile read.
            state = PersonState(found, before.consent, before.traits, before.unit_ids)
            self._states.put(state)
            return state
        with self._store.engine.connect() as conn:
            consent = self._purposes.allows_all(conn, found.person_id, self._purpose_names)
            unit_ids = self.experiments.unit_ids(conn, found.person_id)
            traits: dict[str, ResolvedTrait] = {}
            if consent["personalization"]:
                traits = self._profiles.traits_of(found.person_id, keys=RULE_TRAITS, conn=conn)
                if found.dirty:
                    found = found.rebuilt()  # reading the traits rebuilt the profile
        state = PersonState(found, consent, traits, unit_ids)
        self._states.put(state)
        return state

    def _past(self, bundle: ModelBundle, state: PersonState) -> Past:
        """The person's interactions in this model's item space (kept with their state)."""
        past = state.past
        if past is None or past.version != bundle.version:
            rows = self._store.serving.history(state.found.person_id)
            past = state.past = Past.of(bundle, state.found.newest_interaction, rows)
        return past

    def _ranked(
        self, bundle: ModelBundle, state: PersonState, past: Past, how_many: int, exclude: IntArray | None
    ) -> tuple[IntArray, FloatArray]:
        """The model's `how_many` best items for the person, kept with their state: scoring is most of a
        decision's cost, and it changes only with their history or the model."""
        key = (bundle.version, exclude is None)
        kept = state.ranked.get(key)
        if kept is None or (kept[2] < how_many and len(kept[0]) == kept[2]):
            history = past.history
            now = max(bundle.trained_until.timestamp(), float(history.times.max()) if len(history) else 0.0)
            wanted = max(how_many, RANKED_KEEP)
            picks, scores = top_n(bundle.model.score(history, now), wanted, exclude=exclude)
            kept = state.ranked[key] = (picks, scores, wanted)
        return kept[0][:how_many], kept[1][:how_many]

    def _with_model(
        self,
        bundle: ModelBundle,
        where: Placement,
        n: int,
        person_id: int | None,
        traits: dict[str, ResolvedTrait],
        state: PersonState | None,
        *,
        consented: bool,
        arm: Assignment,
        context: dict[str, Any] | None,
        outside: bool = False,
    ) -> Decision:
        past = self._past(bundle, state) if state is not None else Past.of(bundle, None, [])
        personalized = personalizes(past, consented=consented, baseline=arm.baseline)
        stated_categories = stated(traits, "favourite_categories")
        said: list[Reason] = []
        how_many = CANDIDATES_PER_SLOT * n
        exclude = past.owned_array if not where.repeats else None
        members = self._members(bundle, stated_categories) if stated_categories and not personalized else {}
        persona = traits.get("persona") if consented and not arm.baseline else None
        favourites = self._persona_items(bundle, persona) if persona is not None else None
        if personalized:
            assert state is not None
            picks, picked_scores = self._ranked(bundle, state, past, how_many, exclude)
            said.append(reasons.ranked_for_you(bundle.model.name, bundle.version, bundle.trained_until))
            if persona is not None and favourites is not None and len(favourites) and len(past.had) < THIN:
                # Little history of their own yet: what their persona buys most comes first.
                picks, picked_scores = favourites_first(favourites, picks, picked_scores, exclude)
                said.append(reasons.thin_history(persona, len(past.had)))
        elif arm.baseline and consented:
            # The holdout, or an experiment's popularity arm: the non-personal baseline, said plainly.
            picks, picked_scores = self._popular(bundle, how_many, exclude, members)
            said.append(reasons.baseline(arm, bundle.version))
        elif not consented:
            picks, picked_scores = self._popular(bundle, how_many, exclude, members)
            said.append(reasons.without_consent(bundle.version))
        elif favourites is not None and len(favourites):
            # Little history of their own: their persona's favourites first (then their stated categories').
            picks, picked_scores = self._popular(bundle, how_many, exclude, {**members, PERSONA: favourites})
        else:
            picks, picked_scores = self._popular(bundle, how_many, exclude, members)
        candidates = [bundle.item_ids[i] for i in picks]
        items = apply_rules(
            bundle,
            where,
            n,
            traits,
            candidates,
            picked_scores,
            past,
            said,
            self._catalog.get,
            personalized=personalized,
            stated_categories=stated_categories,
            category_members=members,
            context=context,
        )
        if outside and where.audience is not None:
            said.insert(0, reasons.outside_audience(where.name, where.audience, bundle.version))
        elif not personalized and not arm.baseline and consented:
            said.insert(0, reasons.cold_start(bundle.version, items, stated_categories))
        if persona is not None and favourites is not None and len(favourites):
            chosen = {bundle.item_ids[i] for i in favourites.tolist()}
            liked = sum(1 for item in items if item.item_id in chosen)
            if liked:
                said.append(reasons.popular_with_persona(persona, liked, len(items)))
        owned = past.owned
        if not where.repeats and owned:
            said.append(reasons.left_out_owned(len(owned), where.name))
        return Decision(str(uuid.uuid4()), where.name, person_id, items, said, bundle.version, personalized)

    def _in_audience(self, where: Placement, person_id: int | None) -> bool:
        """Whether the person is in the placement's audience (read through the experiments' targeting)."""
        targeting = self.experiments.targeting
        if targeting is None or person_id is None or where.audience is None:
            return False
        try:
            return targeting.contains(None, {"audience": where.audience}, person_id)
        except NotFound:  # the audience was deleted: nobody is in it, so everyone sees the baseline
            return False

    def _persona_items(self, bundle: ModelBundle, persona: ResolvedTrait) -> IntArray | None:
        """The model's items among the person's persona's favourites (what most of its members bought),
        kept until the catalog, the model or the persona changes."""
        persona_id = persona.record.evidence.get("persona_id") if persona.record.evidence else None
        if not isinstance(persona_id, str):
            return None
        key = ("persona", bundle.version, persona_id, persona.record.evidence.get("run"))
        found = self._catalog.memo(key)
        if found is None:
            try:
                top = self._store.personas.get(persona_id).body.get("top_items", [])
            except NotFound:
                top = []
            found = np.asarray(
                [i for item in top if (i := bundle.index.get(str(item.get("item_id")))) is not None], np.int64
            )
            self._catalog.keep(key, found)
        return np.asarray(found, np.int64)

    def _members(self, bundle: ModelBundle, categories: list[str]) -> dict[str, IntArray]:
        """The model's items in each of these categories, kept until the catalog or the model changes."""
        found: dict[str, IntArray] = {}
        for category in categories:
            key = ("members", bundle.version, category.strip().lower())
            members = self._catalog.memo(key)
            if members is None:
                members = category_members(bundle, self._store.catalog.in_category(category), category)
                self._catalog.keep(key, members)
            found[category] = members
        return found

    def _popular(
        self,
        bundle: ModelBundle,
        how_many: int,
        exclude: IntArray | None,
        members: dict[str, IntArray] | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """`top_n` of the bundle's popularity; the same for every visitor, so kept per version. With
        `members` (the items in the person's stated favourite categories), the best sellers among those
        come first, `how_many` of them, then `how_many` of the rest: however low a category's best
        seller ranks in the whole shop, the stated categories are where the choice starts."""
        if members:
            inside = np.unique(np.concatenate(list(members.values())))
            scores = np.full(len(bundle.popularity), -np.inf)
            scores[inside] = bundle.popularity[inside]
            first, first_scores = top_n(scores, how_many, exclude=exclude)
            outside = inside if exclude is None else np.concatenate([inside, exclude])
            rest, rest_scores = top_n(bundle.popularity, how_many, exclude=outside)
            return np.concatenate([first, rest]), np.concatenate([first_scores, rest_scores])
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
        reason = reasons.not_agreed(where.name, purpose)
        return Decision(str(uuid.uuid4()), where.name, person_id, [], [reason], None, False)


def favourites_first(
    favourites: IntArray, picks: IntArray, scores: FloatArray, exclude: IntArray | None
) -> tuple[IntArray, FloatArray]:
    """The persona's favourites (less what is excluded), then the model's picks that are not among them;
    the favourites score above every pick, in their own order."""
    first = favourites if exclude is None else favourites[~np.isin(favourites, exclude)]
    rest = ~np.isin(picks, first)
    top = float(scores.max()) if len(scores) else 0.0
    lifted = top + np.arange(len(first), 0, -1, dtype=np.float64)
    return np.concatenate([first, picks[rest]]), np.concatenate([lifted, scores[rest]])


def _context_json(context: dict[str, Any] | None) -> str | None:
    """The call's context as logged with its decision: a JSON object of at most `CONTEXT_BYTES`, whose
    `item_id` (the item being viewed), when given, is a string. None when there is none."""
    if context is None:
        return None
    if not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object", field="context")
    if "item_id" in context and not isinstance(context["item_id"], str):
        raise InvalidInput(
            "context.item_id must be a string: the id of the item being viewed", field="context"
        )
    try:
        logged = orjson.dumps(context)
    except orjson.JSONEncodeError:
        raise InvalidInput("context must hold only JSON values, under string keys", field="context") from None
    if len(logged) > CONTEXT_BYTES:
        raise InvalidInput(f"context must be at most {CONTEXT_BYTES:,} bytes of JSON", field="context")
    return logged.decode() if context else None
