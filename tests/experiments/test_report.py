"""Experiment reports on both backends, from SIMULATED exposures and orders written straight to the store.

Every dataset here is simulated with a fixed seed and a known truth (the effect is put in on purpose),
so the verdicts have a right answer: a real effect is a win whose interval excludes zero, an A/A test is
inconclusive, a broken split is flagged, a bandit's propensities are a distribution with a floor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import insert

from shopkeeper.decide.placements import DEFAULT_PLACEMENTS
from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.service import ExperimentService, new_experiment
from shopkeeper.store import Store
from shopkeeper.store.schema import decisions, events

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PLACEMENTS = DEFAULT_PLACEMENTS


def simulate(
    store: Store,
    experiment: str | None,
    arms: list[str],
    people: list[int],
    rates: list[float],
    *,
    seed: int,
    spend: float = 20.0,
    pre_rate: float = 0.0,
    cohort: bool = False,
    first_person: int = 0,
    propensity: float = 0.5,
) -> None:
    """SIMULATED: people[i] people in arm i, each buying within the window with probability rates[i].

    Buyers spend `spend` on average; with `pre_rate`, people also bought before their exposure, and
    those who did buy more afterwards too (so the pre-period predicts the outcome: CUPED's food).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    person = first_person
    for arm, count, rate in zip(arms, people, rates, strict=True):
        for _ in range(count):
            person += 1
            at = START + timedelta(minutes=int(rng.integers(0, 7 * 24 * 60)))
            for repeat in range(1 + int(rng.integers(0, 2))):  # some people are shown it twice
                rows.append(
                    {
                        "decision_id": str(uuid.uuid4()),
                        "person_id": person,
                        "external_id": f"p{person}",
                        "placement": "web",
                        "model_version": 1,
                        "personalized": 1,
                        "items": "[]",
                        "reasons": "[]",
                        "at": at + timedelta(hours=repeat),
                        "unit": f"p{person}",
                        "cohort": arm if cohort else "personalized",
                        "experiment": experiment,
                        "arm": arm,
                        "propensity": propensity,
                    }
                )
            loyal = rng.random() < pre_rate
            if loyal:
                orders.append(_order(person, at - timedelta(days=2), spend * 2))
            if rng.random() < rate + (0.3 if loyal else 0.0):
                orders.append(_order(person, at + timedelta(days=float(rng.uniform(0, 10))), spend))
    with store.engine.begin() as conn:
        conn.execute(insert(decisions), rows)
        if orders:
            conn.execute(insert(events), orders)


def _order(person: int, at: datetime, revenue: float, name: str = "Order Completed") -> dict[str, Any]:
    message = f"m-{uuid.uuid4()}"
    payload = {"type": "track", "event": name, "userId": f"p{person}", "properties": {"revenue": revenue}}
    return {
        "message_id": message,
        "type": "track",
        "event": name,
        "user_id": f"p{person}",
        "anonymous_id": None,
        "person_id": person,
        "timestamp": at,
        "received_at": at,
        "key_id": None,
        "payload": orjson.dumps(payload).decode(),
    }


def create(store: Store, name: str, arms: list[str], **kwargs: Any) -> ExperimentService:
    service = ExperimentService(store)
    service.create(new_experiment(name, "web", [(a, {}) for a in arms], placements=PLACEMENTS, **kwargs))
    return service


def test_a_simulated_real_effect_is_a_win_whose_interval_excludes_zero(store: Store) -> None:
    service = create(store, "effect", ["control", "treatment"])
    simulate(store, "effect", ["control", "treatment"], [3000, 3000], [0.10, 0.16], seed=1)
    report = service.report("effect")
    control, treatment = report["arms"]
    assert (control["people"], treatment["people"]) == (3000, 3000)
    conversion = treatment["metrics"][0]
    assert conversion["metric"] == "conversion" and conversion["verdict"] == "win"
    assert 0 < conversion["ci_low"] < conversion["diff"] < conversion["ci_high"]
    assert conversion["always_valid_ci_low"] <= conversion["ci_low"]
    assert report["summary"][0].startswith("treatment beats control on conversion by")
    assert treatment["probability_best"] > 0.99
    assert report["srm"]["checked"] and not report["srm"]["mismatch"] and report["trustworthy"]
    assert treatment["revenue"] == pytest.approx(20.0 * treatment["conversions"])


def test_a_simulated_a_a_test_is_inconclusive_and_says_how_many_more_people(store: Store) -> None:
    service = create(store, "aa", ["a", "b"])
    simulate(store, "aa", ["a", "b"], [2000, 2000], [0.10, 0.10], seed=2)
    report = service.report("aa")
    for metric in report["arms"][1]["metrics"]:
        assert metric["verdict"] == "inconclusive"
        assert metric["ci_low"] < 0 < metric["ci_high"] or metric["diff"] == 0
    assert "not distinguishable from a on conversion yet" in report["summary"][0]


def test_a_simulated_loss_says_the_baseline_is_better(store: Store) -> None:
    service = create(store, "worse", ["personalized", "popular"])
    simulate(store, "worse", ["personalized", "popular"], [3000, 3000], [0.16, 0.10], seed=3)
    report = service.report("worse")
    assert report["arms"][1]["metrics"][0]["verdict"] == "loss"
    assert report["summary"][0].startswith("personalized is better")


def test_a_sample_ratio_mismatch_is_flagged(store: Store) -> None:
    service = create(store, "skewed", ["a", "b"], weights=[50, 50])
    simulate(store, "skewed", ["a", "b"], [3000, 2500], [0.1, 0.1], seed=4)
    report = service.report("skewed")
    assert report["srm"]["mismatch"] and report["srm"]["p_value"] < 0.001
    assert report["srm"]["expected"] == {"a": 2750.0, "b": 2750.0}
    assert not report["trustworthy"] and report["summary"][0].startswith("Warning: sample ratio mismatch")


def test_cuped_uses_pre_period_revenue_and_narrows_the_interval(store: Store) -> None:
    service = create(store, "cuped", ["a", "b"])
    simulate(store, "cuped", ["a", "b"], [2000, 2000], [0.1, 0.14], seed=5, pre_rate=0.3)
    report = service.report("cuped")
    revenue = report["arms"][1]["metrics"][1]
    assert report["cuped"] and revenue["method"] == "cuped-welch"
    assert revenue["cuped"]["variance_reduction"] > 0.05
    assert revenue["treatment_raw"] == pytest.approx(report["arms"][1]["revenue_per_person"])


def test_only_outcomes_inside_the_window_after_first_exposure_count(store: Store) -> None:
    service = create(store, "window", ["a", "b"], window_days=7, outcome_events=["Review Written"])
    simulate(store, "window", ["a", "b"], [1, 1], [0.0, 0.0], seed=6)  # persons 1 (a) and 2 (b)
    report = service.report("window")
    with store.engine.begin() as conn:
        first = {
            row.person_id: row.at for row in conn.execute(decisions.select().order_by(decisions.c.at.desc()))
        }
        conn.execute(
            insert(events),
            [
                _order(1, first[1] + timedelta(days=6), 5.0),  # inside
                _order(1, first[1] + timedelta(days=8), 7.0),  # after the window
                _order(2, first[2] - timedelta(days=1), 9.0),  # before: pre-period only
                _order(2, first[2] + timedelta(days=1), 0.0, name="Review Written"),
            ],
        )
    report = service.report("window")
    a, b = report["arms"]
    assert (a["conversions"], a["revenue"], b["conversions"], b["revenue"]) == (1, 5.0, 0, 0.0)
    assert (a["events"], b["events"]) == ({"Review Written": 0}, {"Review Written": 1})
    assert report["cuped"]  # person 2 bought in the pre-period
    assert a["metrics"] == [] and "too few people" in b["note"]
    longer = service.report("window", window_days=9)
    assert longer["arms"][0]["revenue"] == 12.0


def test_the_holdout_report_compares_personalized_with_the_baseline(store: Store) -> None:
    service = ExperimentService(store)
    simulate(store, None, ["holdout", "personalized"], [500, 9500], [0.05, 0.08], seed=7, cohort=True)
    report = service.report("holdout")
    assert report["kind"] == "holdout" and [a["arm"] for a in report["arms"]] == ["holdout", "personalized"]
    assert report["srm"]["checked"] and not report["srm"]["mismatch"]
    assert "baseline" in report["summary"][0] and report["summary"][0].startswith("personalized")


def test_bandit_propensities_are_a_distribution_with_a_floor_and_follow_the_rewards(store: Store) -> None:
    arms = ["a", "b", "c"]
    service = create(store, "ts", arms, bandit=True, floor=0.05)
    experiment = service.experiments.get("ts")
    fresh = service.bandit_propensities(experiment)
    assert fresh.sum() == pytest.approx(1.0) and fresh == pytest.approx([1 / 3] * 3)
    simulate(store, "ts", arms, [400, 400, 400], [0.05, 0.25, 0.05], seed=8)
    service.refresh()
    learned = service.bandit_propensities(experiment)
    assert learned.sum() == pytest.approx(1.0)
    assert learned.min() >= 0.05 - 1e-12 and learned.argmax() == 1 and learned[1] > 0.85
    # Each choice is logged with the propensity of the arm chosen; choices follow the propensities.
    chosen: list[str] = []
    with store.engine.connect() as conn:
        for i in range(3000):
            assignment = service.assign(conn, "web", None, f"visitor-{i}", None, consented=True)
            if assignment.cohort != "personalized":
                continue
            assert assignment.propensity == pytest.approx(learned[arms.index(assignment.arm)])
            chosen.append(assignment.arm)
    shares = np.array([chosen.count(a) for a in arms]) / len(chosen)
    assert shares == pytest.approx(learned, abs=0.03)
    report = service.report("ts")
    assert not report["srm"]["checked"] and report["arms"][1]["probability_best"] > 0.99


def test_a_revenue_bandit_moves_traffic_to_the_arm_that_earns_more(store: Store) -> None:
    """SIMULATED: the same conversion rate in every arm, but arm b's buyers spend five times as much.
    A conversion bandit cannot tell them apart; a revenue bandit can."""
    arms = ["a", "b"]
    by_revenue = create(store, "rev", arms, bandit=True, reward="revenue", floor=0.05)
    assert by_revenue.experiments.get("rev").kind == "bandit_revenue"
    for arm, spend, first in (("a", 10.0, 0), ("b", 50.0, 10_000)):
        simulate(store, "rev", [arm], [400], [0.2], seed=9, spend=spend, first_person=first)
    learned = by_revenue.bandit_propensities(by_revenue.experiments.get("rev"))
    assert learned.sum() == pytest.approx(1.0) and learned.min() >= 0.05 - 1e-12
    assert learned[1] > 0.9
    with pytest.raises(InvalidInput, match="reward"):
        new_experiment("x", "web", [("a", {}), ("b", {})], placements=PLACEMENTS, reward="click", bandit=True)
    with pytest.raises(InvalidInput, match="bandits"):
        new_experiment("x", "web", [("a", {}), ("b", {})], placements=PLACEMENTS, reward="revenue")


def test_a_bandit_report_estimates_each_arm_off_policy_from_its_own_log(store: Store) -> None:
    """SIMULATED: a 50/50 log (propensity 0.5 each) where b converts 30% and a 10%. Serving b to everyone
    would convert about 30%: IPW, self-normalized IPW and doubly robust each say so from the log."""
    service = create(store, "ope", ["a", "b"], bandit=True, floor=0.05)
    simulate(store, "ope", ["a", "b"], [1500, 1500], [0.10, 0.30], seed=11, propensity=0.5)
    values = {v["arm"]: v for v in service.report("ope")["off_policy"]}
    for arm, truth in (("a", 0.10), ("b", 0.30)):
        value = values[arm]
        assert value["reward"] == "conversion"
        for estimator in ("ipw", "snipw", "dr"):
            assert value[estimator] == pytest.approx(truth, abs=0.04), (arm, estimator)
        assert value["ci_low"] < truth < value["ci_high"]
    service.stop("ope")
    assert "off_policy" not in create(store, "plain", ["a", "b"]).report("plain")
