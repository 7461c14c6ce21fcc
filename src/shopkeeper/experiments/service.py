"""Experiments at decide time and at report time: the holdout, A/B/n arms, bandits, and their reports.

The unit of assignment is the person, named by a stable external id so that every channel agrees:
the person's first `userId` (the oldest linked), else their first `anonymousId`, else the id the call
came with; an unknown visitor is assigned by the id they came with (`userId`, else `anonymousId`). A
visitor who is later identified may so change unit once; reports count each person once, in the arm of
their first exposure.

Every decision falls in one universal cohort: `holdout` (a fixed share of people who get the
non-personal popularity baseline everywhere and are in no experiment), `personalized` (everyone else),
or `no_consent` (no personalization consent: they get the baseline whatever their arm, and reports leave
them out). Within `personalized`, a running experiment on the placement whose audience the person is in
picks an arm: by the unit's hash and the traffic weights (A/B/n), or by Thompson sampling (bandits).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput
from shopkeeper.experiments import DEFAULT_FLOOR, DEFAULT_WINDOW_DAYS, HOLDOUT, NO_CONSENT, PERSONALIZED
from shopkeeper.experiments.assign import HOLDOUT_SALT, Holdout, choose_arm, unit_float
from shopkeeper.experiments.bandit import BetaBernoulliThompson, NormalRevenueThompson
from shopkeeper.experiments.ope import PerActionMeanModel, evaluate_policy
from shopkeeper.experiments.report import (
    ReportSpec,
    build_report,
    conversions_by_person,
    lift_over_time,
    outcome_span,
    person_outcomes,
)
from shopkeeper.profiles.service import ProfileService
from shopkeeper.profiles.traits import resolve
from shopkeeper.store import Store
from shopkeeper.store.experiments import Experiment, Exposures, Outcomes, SqlExperiments, Variant

MODELS = ("personalized", "popularity")
REWARDS = ("conversion", "revenue")  # a bandit's reward: Beta-Bernoulli, or normal on revenue per person
BANDITS = ("bandit", "bandit_revenue")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED = {HOLDOUT, PERSONALIZED, NO_CONSENT}
K_ANONYMITY = 10  # an audience smaller than this never has outcomes reported per person


class Targeting(Protocol):
    """Audiences, as experiments use them (`shopkeeper.personas.audiences.AudienceService` is one; `Shop`
    hands it over). A target is a saved audience (`{"audience": NAME}`) or a condition written in place."""

    def target(self, raw: Any, *, field: str = "audience") -> dict[str, Any] | None: ...

    def contains(
        self, conn: Connection | None, target: dict[str, Any] | None, person_id: int | None
    ) -> bool: ...

    def target_reach(self, target: dict[str, Any] | None) -> dict[str, Any]: ...

    def condition_of(self, target: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Assignment:
    """Where one decision falls: the unit, the cohort, and the experiment's arm with its propensity."""

    unit: str
    cohort: str
    arm: str
    propensity: float | None
    experiment: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> bool:
        """Whether the arm is the non-personal popularity baseline: the holdout, or an experiment's
        popularity arm. (Its reasons are worded in `shopkeeper.decide.reasons`.)"""
        return self.cohort == HOLDOUT or self.options.get("model") == "popularity"


def parse_variant(name: str, options: Any) -> Variant:
    """A variant's name and options, checked: `model` (personalized | popularity), `n` (1-50),
    `max_per_category` (1-50), `repeats` (true/false)."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (NO_CONSENT,):
        raise InvalidInput(
            f"variant name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (not 'no_consent')",
            field="variants",
        )
    if not isinstance(options, dict):
        raise InvalidInput(f"variant {name}: options must be a JSON object", field="variants")
    unknown = set(options) - {"model", "n", "max_per_category", "repeats"}
    if unknown:
        raise InvalidInput(
            f"variant {name}: unknown option(s) {', '.join(sorted(unknown))}; "
            "known: model, n, max_per_category, repeats",
            field="variants",
        )
    if "model" in options and options["model"] not in MODELS:
        raise InvalidInput(f"variant {name}: model must be one of {', '.join(MODELS)}", field="variants")
    for key in ("n", "max_per_category"):
        value = options.get(key)
        if key in options and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 50):
            raise InvalidInput(f"variant {name}: {key} must be a whole number from 1 to 50", field="variants")
    if "repeats" in options and not isinstance(options["repeats"], bool):
        raise InvalidInput(f"variant {name}: repeats must be true or false", field="variants")
    return Variant(name, dict(options))


def parse_audience(raw: Any) -> dict[str, Any] | None:
    """An audience rule on one resolved trait: `{"trait": K, "contains": V}` (a list holds V, or a
    category path has V as one of its parts), `{"trait": K, "equals": V}`, or numeric bounds
    `{"trait": K, "gte": N}` / `"lte"` (both may be given). None: everyone."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("trait"), str) or not raw["trait"]:
        raise InvalidInput('an audience is a JSON object with a "trait" name and one test', field="audience")
    tests = set(raw) - {"trait"}
    if not tests or not tests <= {"contains", "equals", "gte", "lte"}:
        raise InvalidInput(
            "an audience needs one test: contains, equals, or gte/lte (numbers)", field="audience"
        )
    if len(tests & {"contains", "equals"}) and len(tests) > 1:
        raise InvalidInput("an audience uses one of contains, equals, or gte/lte", field="audience")
    for bound in tests & {"gte", "lte"}:
        value = raw[bound]
        if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
            raise InvalidInput(f"audience {bound} must be a number", field="audience")
    return dict(raw)


def new_experiment(
    name: str,
    placement: str,
    variants: Sequence[tuple[str, Any]],
    *,
    placements: Collection[str],
    weights: Sequence[float] | None = None,
    audience: Any = None,
    bandit: bool = False,
    reward: str = "conversion",
    window_days: int = DEFAULT_WINDOW_DAYS,
    floor: float = DEFAULT_FLOOR,
    outcome_events: Sequence[str] = (),
    targeting: Targeting | None = None,
) -> Experiment:
    """Check everything a new experiment says, precisely, and build it (running from now). `placements`
    names the shop's placements (a dict of them will do). With `targeting`, the audience is a saved
    audience's name or a condition in the audience language; without, a rule on one trait."""
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise InvalidInput(
            f"experiment name {name!r}: use 1-64 letters, digits, '_', '.' or '-' "
            "(holdout, personalized and no_consent are reserved)",
            field="name",
        )
    if placement not in placements:
        known = ", ".join(sorted(placements))
        raise InvalidInput(f"unknown placement {placement!r}; known placements: {known}", field="placement")
    parsed = [parse_variant(v, o) for v, o in variants]
    if len(parsed) < 2:
        raise InvalidInput(
            "an experiment needs at least two variants (the first is the control)", field="variants"
        )
    if len({v.name for v in parsed}) != len(parsed):
        raise InvalidInput("variant names must differ", field="variants")
    if weights is None:
        weights = [1.0] * len(parsed)
    if len(weights) != len(parsed):
        raise InvalidInput(
            f"give one weight per variant ({len(parsed)}), not {len(weights)}", field="weights"
        )
    if any(
        not isinstance(w, int | float) or isinstance(w, bool) or not np.isfinite(w) or w <= 0 for w in weights
    ):
        raise InvalidInput("traffic weights must be positive numbers", field="weights")
    if not isinstance(window_days, int) or not 1 <= window_days <= 365:
        raise InvalidInput("the attribution window must be 1 to 365 days", field="window_days")
    if not 0 <= floor <= 1 / len(parsed):
        raise InvalidInput(f"the exploration floor must be between 0 and 1/{len(parsed)}", field="floor")
    if reward not in REWARDS:
        raise InvalidInput("a bandit's reward is conversion or revenue", field="reward")
    if reward != "conversion" and not bandit:
        raise InvalidInput("reward applies to bandits; an A/B test reports every metric", field="reward")
    events = [e for e in outcome_events]
    if any(not isinstance(e, str) or not 0 < len(e) <= 255 for e in events):
        raise InvalidInput("outcome events are event names of 1-255 characters", field="outcome_events")
    return Experiment(
        name=name,
        placement=placement,
        kind=("bandit" if reward == "conversion" else "bandit_revenue") if bandit else "ab",
        status="running",
        variants=tuple(parsed),
        weights=tuple(float(w) for w in weights),
        audience=parse_audience(audience) if targeting is None else targeting.target(audience),
        outcome_events=tuple(dict.fromkeys(events)),
        window_days=window_days,
        floor=float(floor),
        salt=f"experiment:{name}",
        created_at=datetime.now(UTC),
    )


class ExperimentService:
    """Assigns decisions to cohorts and arms, and reports. Thread-safe; one per process.

    Running experiments are re-read every `poll_seconds`, and bandit posteriors every
    `bandit_seconds`, so a `create` or `stop` from the CLI reaches a running server within seconds.
    """

    def __init__(
        self,
        store: Store,
        profiles: ProfileService | None = None,
        *,
        holdout: Holdout | None = None,
        poll_seconds: float = 5.0,
        bandit_seconds: float = 60.0,
        targeting: Targeting | None = None,
    ) -> None:
        self._store = store
        self.targeting = targeting
        self._profiles = profiles or ProfileService(store)
        self.holdout = holdout or Holdout()
        self.experiments = store.experiments
        self._poll_seconds = poll_seconds
        self._bandit_seconds = bandit_seconds
        self._lock = threading.Lock()
        self._running: dict[str, Experiment] = {}
        self._checked = float("-inf")
        self._bandits: dict[str, tuple[float, npt.NDArray[np.float64]]] = {}

    # ---- at decide time ----------------------------------------------------------------------------

    def unit_of(
        self, conn: Connection, person_id: int | None, user_id: str | None, anonymous_id: str | None
    ) -> str:
        """The person's stable id (see the module docstring)."""
        called = user_id if user_id is not None else anonymous_id
        assert called is not None
        return unit_from(self.unit_ids(conn, person_id) if person_id is not None else {}, called)

    def unit_ids(self, conn: Connection, person_id: int) -> dict[str, str]:
        """The person's first userId and first anonymousId (theirs or merged into them), by kind."""
        return self._store.identities.unit_ids(person_id, conn)

    def running(self, placement: str) -> Experiment | None:
        """The experiment running on this placement, if any (re-read every `poll_seconds`)."""
        if time.monotonic() - self._checked >= self._poll_seconds:
            with self._lock:
                if time.monotonic() - self._checked >= self._poll_seconds:
                    found = self.experiments.list(status="running")
                    self._running = {e.placement: e for e in found}
                    self._checked = time.monotonic()
        return self._running.get(placement)

    def refresh(self) -> None:
        """Re-read experiments and bandit posteriors on the next decision."""
        self._checked = float("-inf")
        self._bandits.clear()

    def assign(
        self,
        conn: Connection | None,
        placement: str,
        person_id: int | None,
        user_id: str | None,
        anonymous_id: str | None,
        *,
        consented: bool,
        unit: str | None = None,
    ) -> Assignment:
        """The person's cohort and arm on this placement. `unit` is their `unit_of` when the caller
        knows it; otherwise it is read on `conn`. Without `conn`, an audience rule reads on its own."""
        if unit is None:
            assert conn is not None, "assign needs a connection or the unit"
            unit = self.unit_of(conn, person_id, user_id, anonymous_id)
        experiment = self.running(placement)
        if not consented:
            return Assignment(unit, NO_CONSENT, NO_CONSENT, None, experiment.name if experiment else None)
        if self.holdout.contains(unit):
            return Assignment(unit, HOLDOUT, HOLDOUT, self.holdout.share)
        outside = Assignment(unit, PERSONALIZED, PERSONALIZED, 1 - self.holdout.share)
        if experiment is None:
            return outside
        inside = self._in_audience(conn, experiment, person_id)
        compared = (experiment.audience or {}).get("compare")
        if compared is not None:  # broad vs narrow: the audience, and an equal random sample of the rest
            if inside:
                index, propensity = 0, 1.0
            elif unit_float(experiment.salt, unit) < float(compared):
                index, propensity = 1, float(compared)
            else:
                return outside
            variant = experiment.variants[index]
            return Assignment(unit, PERSONALIZED, variant.name, propensity, experiment.name, variant.options)
        if not inside:
            return outside
        if experiment.kind in BANDITS:
            shares = self.bandit_propensities(experiment)
            u = unit_float(experiment.salt, unit)
            index = min(int(np.searchsorted(np.cumsum(shares), u, side="right")), len(shares) - 1)
            propensity = float(shares[index])
        else:
            index = choose_arm(experiment.salt, unit, experiment.weights)
            propensity = experiment.shares[index]
        variant = experiment.variants[index]
        return Assignment(unit, PERSONALIZED, variant.name, propensity, experiment.name, variant.options)

    def _in_audience(self, conn: Connection | None, experiment: Experiment, person_id: int | None) -> bool:
        rule = experiment.audience
        if rule is None:
            return True
        if person_id is None:
            return False
        if self.targeting is not None:
            target = {"audience": rule["audience"]} if "audience" in rule else rule
            return self.targeting.contains(conn, target, person_id)
        if "trait" not in rule:
            return False  # a saved audience, and no audiences to read it with
        found = self._profiles.traits_of(person_id, keys=(rule["trait"],), conn=conn).get(rule["trait"])
        return matches(rule, None if found is None else found.value)

    def _reach(self, rule: dict[str, Any] | None) -> dict[str, Any]:
        if self.targeting is None or rule is None:
            return audience_reach(self.experiments, rule)
        return self.targeting.target_reach({"audience": rule["audience"]} if "audience" in rule else rule)

    def bandit_propensities(self, experiment: Experiment) -> npt.NDArray[np.float64]:
        """Each arm's chance under Thompson sampling with the floor, from conversions within the window
        of each person's first exposure (a person still inside their window counts as not converted yet).
        Refreshed every `bandit_seconds`; the arms' propensities sum to 1 and none is below the floor."""
        cached = self._bandits.get(experiment.name)
        if cached is not None and time.monotonic() - cached[0] < self._bandit_seconds:
            return cached[1]
        arms, rewards = self._bandit_log(experiment)
        policy: BetaBernoulliThompson | NormalRevenueThompson
        if experiment.kind == "bandit_revenue":
            policy = NormalRevenueThompson(len(experiment.variants), floor=experiment.floor)
        else:
            policy = BetaBernoulliThompson(len(experiment.variants), floor=experiment.floor)
        shares = policy.fit(arms, rewards).propensities()
        self._bandits[experiment.name] = (time.monotonic(), shares)
        return shares

    def _bandit_log(self, experiment: Experiment) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        exposures = self.experiments.exposures(experiment.arms, experiment=experiment.name)
        if exposures.arm.size == 0:
            return exposures.arm, np.zeros(0)
        since, until = outcome_span(exposures, experiment.window_days)
        outcomes = self.experiments.outcomes(since, until, ())
        if experiment.kind == "bandit_revenue":
            spent = person_outcomes(exposures, outcomes, experiment.window_days, 0).revenue
            return exposures.arm, spent
        converted = conversions_by_person(exposures, outcomes, experiment.window_days)
        return exposures.arm, converted.astype(np.float64)

    # ---- managing and reporting ------------------------------------------------------------------

    def create(self, experiment: Experiment) -> Experiment:
        created = self.experiments.create(experiment)
        self.refresh()
        return created

    def stop(self, name: str) -> Experiment:
        if name == HOLDOUT:
            raise InvalidInput(
                "the holdout is not an experiment to stop; set SHOPKEEPER_HOLDOUT_SHARE=0 to end it",
                field="name",
            )
        stopped = self.experiments.stop(name)
        self.refresh()
        return stopped

    def report(self, name: str, *, window_days: int | None = None) -> dict[str, Any]:
        """The report of an experiment, or of the universal holdout (`holdout`)."""
        return self.report_over_time(name, window_days=window_days, points=0)[0]

    def report_over_time(
        self, name: str, *, window_days: int | None = None, points: int = 30
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The report, and its sequential view from the same reads (`report.lift_over_time`: each
        treatment arm's lift in conversion with its always-valid interval at the end of each day, at
        most `points` days). The view is None when `points` is 0 or the report withholds its outcomes."""
        if window_days is not None and not 1 <= window_days <= 365:
            raise InvalidInput("the attribution window must be 1 to 365 days", field="window_days")
        spec, exposures, reach = self._exposures(name, window_days)
        since, until = outcome_span(exposures, spec.window_days)
        outcomes = self.experiments.outcomes(since, until, spec.outcome_events)
        now = datetime.now(UTC)
        report = build_report(spec, exposures, outcomes, reach, now=now)
        if spec.kind in BANDITS:
            report["off_policy"] = off_policy_values(spec, exposures, outcomes)
        if spec.audience is not None and any(0 < arm["people"] < K_ANONYMITY for arm in report["arms"]):
            return withheld(report), None
        path = lift_over_time(spec, exposures, outcomes, now=now, points=points) if points > 0 else None
        return report, path

    def _exposures(self, name: str, window_days: int | None) -> tuple[ReportSpec, Exposures, dict[str, Any]]:
        if name == HOLDOUT:
            spec = ReportSpec(
                name=HOLDOUT,
                kind="holdout",
                placement="every placement",
                status="running" if self.holdout.share > 0 else "off",
                arms=[HOLDOUT, PERSONALIZED],
                labels=["baseline", "personalized"],
                shares=[self.holdout.share, 1 - self.holdout.share] if 0 < self.holdout.share < 1 else None,
                window_days=window_days or DEFAULT_WINDOW_DAYS,
                outcome_events=[],
            )
            return spec, self.experiments.exposures(spec.arms, cohort=True), self._reach(None)
        experiment = self.experiments.get(name)
        spec = ReportSpec(
            name=experiment.name,
            kind=experiment.kind,
            placement=experiment.placement,
            status=experiment.status,
            arms=experiment.arms,
            labels=experiment.arms,
            shares=experiment.shares if experiment.kind == "ab" else None,
            window_days=window_days or experiment.window_days,
            outcome_events=list(experiment.outcome_events),
            audience=experiment.audience,
        )
        exposures = self.experiments.exposures(spec.arms, experiment=name)
        return spec, exposures, self._reach(experiment.audience)


def withheld(report: dict[str, Any]) -> dict[str, Any]:
    """A report on an audience where an arm holds fewer than `K_ANONYMITY` people: who was shown what, but
    no outcome that could be read back to a person (conversions, revenue, rates, comparisons)."""
    for arm in report["arms"]:
        arm.update(conversions=0, conversion_rate=None, revenue=None, revenue_per_person=None)
        arm.update(probability_best=None, metrics=[], events={})
        arm["note"] = f"withheld: an arm holds fewer than {K_ANONYMITY} people"
    report.pop("off_policy", None)
    report["trustworthy"] = False
    report["summary"] = [
        f"Outcomes are not reported: an arm of this audience's experiment holds fewer than {K_ANONYMITY} "
        "people, so they could be read back to a person (k-anonymity). Broaden the audience."
    ]
    return report


def off_policy_values(spec: ReportSpec, exposures: Exposures, outcomes: Outcomes) -> list[dict[str, Any]]:
    """What each arm would have earned had it been served to everyone, estimated from the bandit's own
    log (each person's first exposure and its logged propensity): IPW, self-normalized IPW and doubly
    robust, with 95% bootstrap intervals around the doubly robust one. The reward is the bandit's own:
    conversion, or revenue per person."""
    seen = exposures.arm >= 0
    if not seen.any() or (exposures.propensity[seen] <= 0).any():
        return []
    per_person = person_outcomes(exposures, outcomes, spec.window_days, 0)
    rewards = per_person.revenue if spec.kind == "bandit_revenue" else per_person.converted.astype(np.float64)
    actions, rewards, logged = exposures.arm[seen], rewards[seen], exposures.propensity[seen]
    n_arms = len(spec.arms)
    model = PerActionMeanModel(n_arms).fit(actions, rewards)
    estimates = model.predict(n=actions.size)
    values = []
    for k, arm in enumerate(spec.arms):
        always = np.zeros((actions.size, n_arms))
        always[:, k] = 1.0
        found = {
            e.estimator: e
            for e in evaluate_policy(
                rewards, actions, logged, always, estimates, n_bootstrap=200, random_state=k
            )
        }
        dr = found["dr"]
        values.append(
            {
                "arm": arm,
                "reward": "revenue" if spec.kind == "bandit_revenue" else "conversion",
                **{name: round(e.estimate, 6) for name, e in found.items()},
                "ci_low": round(dr.ci_low, 6),
                "ci_high": round(dr.ci_high, 6),
            }
        )
    return values


def matches(rule: dict[str, Any] | None, value: Any) -> bool:
    """Whether a resolved trait value meets an audience rule (see `experiments.service.parse_audience`)."""
    if rule is None:
        return True
    if value is None:
        return False
    if "equals" in rule:
        return bool(value == rule["equals"])
    if "contains" in rule:
        wanted = str(rule["contains"])
        values: Iterable[Any] = value if isinstance(value, list) else [value]
        return any(str(v) == wanted or wanted in str(v).split(" > ") for v in values)
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None:
        return False
    if "gte" in rule and not number >= rule["gte"]:
        return False
    return not ("lte" in rule and not number <= rule["lte"])


def audience_reach(experiments: SqlExperiments, rule: dict[str, Any] | None) -> dict[str, Any]:
    """How many known people (not merged away) the audience covers, and their share."""
    known, records = experiments.audience_traits(None if rule is None else rule["trait"])
    if rule is None:
        return {"people": known, "covered": known, "share": 1.0 if known else None}
    now = datetime.now(UTC)
    covered = 0
    for found in records.values():
        resolved = resolve(found, now).get(rule["trait"])
        covered += matches(rule, None if resolved is None else resolved.value)
    return {"people": known, "covered": covered, "share": covered / known if known else None}


def unit_from(unit_ids: dict[str, str], called: str) -> str:
    """The unit: the person's first userId, else their first anonymousId, else the id they were called by."""
    return unit_ids.get("user_id") or unit_ids.get("anonymous_id") or called


def holdout_from(share: float, salt: str) -> Holdout:
    """The holdout a shop's settings describe (a bad share is a clear error)."""
    try:
        return Holdout(share=share, salt=salt or HOLDOUT_SALT)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="holdout_share") from None
