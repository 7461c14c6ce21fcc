"""The sequential view (a report's lift at the end of each day, with its always-valid interval) and a
bandit's traffic per day, on hand-made exposures whose counts at every look are known."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import insert

from shopkeeper.decide.placements import DEFAULT_PLACEMENTS
from shopkeeper.experiments.sequential import always_valid_interval, lift_path
from shopkeeper.experiments.service import ExperimentService, new_experiment
from shopkeeper.experiments.stats import Summary
from shopkeeper.store import Store
from shopkeeper.store.schema import decisions, events

DAY = 86_400.0


def test_lift_path_counts_only_who_was_exposed_and_converted_before_each_look() -> None:
    # Control: 4 people, 1 converts at t=2.5; treatment: 4 people, 2 convert (t=1.5 and t=3.5).
    arm = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    first_at = np.array([0.0, 0.5, 1.0, 2.0, 0.0, 0.5, 1.0, 3.0])
    converted_at = np.array([np.inf, 2.5, np.inf, np.inf, 1.5, np.inf, 3.5, np.inf])
    path = lift_path(arm, first_at, converted_at, np.array([0.6, 2.0, 4.0]), n_arms=2)
    assert path.control_people.tolist() == [2, 3, 4]
    assert path.control_conversions.tolist() == [0, 0, 1]
    assert path.people.tolist() == [[2, 3, 4]]
    assert path.conversions.tolist() == [[0, 1, 2]]
    assert path.diff[0].tolist() == pytest.approx([0.0, 1 / 3, 2 / 4 - 1 / 4])
    low, high = always_valid_interval(Summary.of_proportion(1, 4), Summary.of_proportion(2, 4))
    # a difference of two rates lies in [-1, 1]: the interval is kept to that part of it
    assert (path.low[0, 2], path.high[0, 2]) == pytest.approx((max(low, -1.0), min(high, 1.0)))
    assert path.low[0, 2] < path.diff[0, 2] < path.high[0, 2]


def test_a_look_where_an_arm_has_fewer_than_two_people_has_no_figure() -> None:
    path = lift_path(np.array([0, 1, 1]), np.array([0.0, 0.0, 0.0]), np.full(3, np.inf), np.array([1.0]), 2)
    assert np.isnan(path.diff[0, 0]) and np.isnan(path.low[0, 0])
    assert path.control_people.tolist() == [1] and path.people.tolist() == [[2]]


def _decision(person: int, arm: str, at: datetime, experiment: str = "daily") -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": person,
        "external_id": f"p{person}",
        "placement": "web",
        "model_version": 1,
        "personalized": 1,
        "items": "[]",
        "reasons": "[]",
        "at": at,
        "unit": f"p{person}",
        "cohort": "no_consent" if arm == "no_consent" else "personalized",
        "experiment": experiment,
        "arm": arm,
        "propensity": None if arm == "no_consent" else 0.5,
    }


def _order(person: int, at: datetime) -> dict[str, Any]:
    payload = {"type": "track", "event": "Order Completed", "properties": {"revenue": 10.0}}
    return {
        "message_id": f"m-{uuid.uuid4()}",
        "type": "track",
        "event": "Order Completed",
        "user_id": f"p{person}",
        "anonymous_id": None,
        "person_id": person,
        "timestamp": at,
        "received_at": at,
        "key_id": None,
        "payload": orjson.dumps(payload).decode(),
    }


def test_the_view_of_a_stored_experiment_ends_where_its_report_stands(store: Store) -> None:
    """Three days: 10 people a day in each arm; the treatment's people buy on the day after exposure."""
    service = ExperimentService(store)
    service.create(new_experiment("daily", "web", [("a", {}), ("b", {})], placements=DEFAULT_PLACEMENTS))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=2)
    rows, orders = [], []
    person = 0
    for day in range(3):
        for arm in ("a", "b"):
            for i in range(10):
                person += 1
                at = start + timedelta(days=day, minutes=i)
                rows.append(_decision(person, arm, at))
                if arm == "b" and i < 4 and day < 2:  # 4 of 10 buy, the next day
                    orders.append(_order(person, at + timedelta(days=1)))
                if arm == "a" and i < 1:
                    orders.append(_order(person, at + timedelta(hours=1)))
    rows.append(_decision(10_000, "no_consent", start))  # not an arm: left out of both views
    with store.engine.begin() as conn:
        conn.execute(insert(decisions), rows)
        conn.execute(insert(events), orders)
    report, path = service.report_over_time("daily")
    assert path is not None
    assert path["days"] == [(start + timedelta(days=d)).date().isoformat() for d in range(3)]
    assert path["control"]["people"] == [10, 20, 30]
    assert path["control"]["conversions"] == [1, 2, 3]
    b = path["arms"][0]
    assert b["people"] == [10, 20, 30]
    assert b["conversions"] == [0, 4, 8]  # bought the day after: day 1's buyers show at day 2's end
    assert b["diff"][:2] == pytest.approx([-0.1, 0.2 - 0.1])
    conversion = report["arms"][1]["metrics"][0]
    assert (b["diff"][-1], b["always_valid_ci_low"][-1], b["always_valid_ci_high"][-1]) == pytest.approx(
        (conversion["diff"], conversion["always_valid_ci_low"], conversion["always_valid_ci_high"])
    )
    assert [(a["people"], a["conversions"]) for a in service.report("daily")["arms"]] == [(30, 3), (30, 8)]
    traffic = store.experiments.decisions_per_day("daily", ["a", "b"])
    assert traffic == [((start + timedelta(days=d)).date(), arm, 10) for d in range(3) for arm in ("a", "b")]


def test_a_withheld_report_has_no_view(store: Store) -> None:
    service = ExperimentService(store)
    experiment = new_experiment(
        "tiny",
        "web",
        [("a", {}), ("b", {})],
        placements=DEFAULT_PLACEMENTS,
        audience={"trait": "order_count", "gte": 1},
    )
    service.create(experiment)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(decisions), [_decision(p, "ab"[p % 2], now, "tiny") for p in range(1, 7)])
    report, path = service.report_over_time("tiny")
    assert path is None and report["summary"][0].startswith("Outcomes are not reported")
