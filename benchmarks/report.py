"""The experiment report over 1M exposures and 100k outcome events on SQLite, against pandas in the same run.

Goal (issue 6): a report over 1M exposures and 100k outcomes in at most 5 s on SQLite. The data is
SIMULATED: 250,000 people, each shown the experiment 4 times (1M decision rows), split 50/50 by the real
assignment hash; 100,000 "Order Completed" events, some inside each person's 14-day window, some before
(CUPED's pre-period), some after. Anchors, on the very same rows:
- one pandas groupby of the exposures already in memory (each person's first exposure and arm): the
  floor of any per-person report;
- pandas end to end: `read_sql` of the same decisions from the same SQLite file, then that groupby.

    .venv/bin/python benchmarks/report.py [--people 250000] [--per-person 4] [--outcomes 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from goals import record
from sqlalchemy import insert

from shopkeeper.decide.placements import DEFAULT_PLACEMENTS
from shopkeeper.experiments.assign import choose_arms
from shopkeeper.experiments.report import ReportSpec, build_report, outcome_span
from shopkeeper.experiments.service import ExperimentService, audience_reach, new_experiment
from shopkeeper.store import Store
from shopkeeper.store.schema import decisions, events

START = datetime(2026, 1, 5, tzinfo=UTC)
CHUNK = 50_000
GOAL_SECONDS = 5.0
GOAL_SIZE = (1_000_000, 100_000)  # exposures, outcomes: the goal is a time for this much data


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def fill(store: Store, people: int, per_person: int, outcomes: int, rng: np.random.Generator) -> None:
    units = [f"u{i}" for i in range(people)]
    arms = np.asarray(["control", "treatment"])[choose_arms("experiment:bench", units, [1, 1])]
    first = rng.integers(0, 14 * 24 * 3600, size=people)
    with store.engine.begin() as conn:
        rows: list[dict[str, Any]] = []
        for repeat in range(per_person):
            for i in range(people):
                rows.append(
                    {
                        "decision_id": str(uuid.uuid4()),
                        "person_id": i + 1,
                        "external_id": units[i],
                        "placement": "web",
                        "model_version": 1,
                        "personalized": 1,
                        "items": "[]",
                        "reasons": "[]",
                        "at": START + timedelta(seconds=int(first[i]) + repeat * 3600),
                        "unit": units[i],
                        "cohort": "personalized",
                        "experiment": "bench",
                        "arm": str(arms[i]),
                        "propensity": 0.5,
                    }
                )
                if len(rows) == CHUNK:
                    conn.execute(insert(decisions), rows)
                    rows = []
        if rows:
            conn.execute(insert(decisions), rows)
        who = rng.integers(0, people, size=outcomes)
        offset = rng.uniform(-10, 20, size=outcomes) * 86_400  # days around the first exposure
        revenue = np.round(rng.gamma(2.0, 15.0, size=outcomes), 2)
        rows = []
        for k in range(outcomes):
            at = START + timedelta(seconds=float(first[who[k]] + offset[k]))
            payload = {"type": "track", "event": "Order Completed", "properties": {"revenue": revenue[k]}}
            rows.append(
                {
                    "message_id": f"m{k}",
                    "type": "track",
                    "event": "Order Completed",
                    "user_id": units[who[k]],
                    "anonymous_id": None,
                    "person_id": int(who[k]) + 1,
                    "timestamp": at,
                    "received_at": at,
                    "key_id": None,
                    "payload": orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                }
            )
            if len(rows) == CHUNK:
                conn.execute(insert(events), rows)
                rows = []
        if rows:
            conn.execute(insert(events), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=250_000)
    parser.add_argument("--per-person", type=int, default=4)
    parser.add_argument("--outcomes", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store.open(url)
        service = ExperimentService(store)
        service.create(
            new_experiment(
                "bench", "web", [("control", {}), ("treatment", {})], placements=DEFAULT_PLACEMENTS
            )
        )
        fill_time, _ = timed(lambda: fill(store, args.people, args.per_person, args.outcomes, rng))
        exposures_n = args.people * args.per_person
        print(
            f"SIMULATED: {exposures_n:,} exposures of {args.people:,} people, {args.outcomes:,} orders "
            f"(written in {fill_time:.1f} s); SQLite, best of 3 runs"
        )
        engine = store.engine
        arms = ["control", "treatment"]
        stages: dict[str, list[float]] = {"exposures": [], "outcomes": [], "statistics": [], "total": []}
        spec = ReportSpec("bench", "ab", "web", "running", arms, arms, [0.5, 0.5], 14, [])
        for _ in range(3):
            t_total = time.perf_counter()
            t_exposures, exposures = timed(lambda: store.experiments.exposures(arms, experiment="bench"))
            since, until = outcome_span(exposures, 14)
            t_outcomes, outcomes = timed(
                lambda since=since, until=until: store.experiments.outcomes(since, until, ())
            )
            t_stats, report = timed(
                lambda exposures=exposures, outcomes=outcomes: build_report(
                    spec, exposures, outcomes, audience_reach(store.experiments, None), now=datetime.now(UTC)
                )
            )
            stages["total"].append(time.perf_counter() - t_total)
            stages["exposures"].append(t_exposures)
            stages["outcomes"].append(t_outcomes)
            stages["statistics"].append(t_stats)
        full, via_service = timed(lambda: service.report("bench"))
        assert via_service["people"] == report["people"] == args.people

        frame = pd.read_sql("SELECT unit, arm, at FROM decisions WHERE experiment = 'bench'", engine)
        frame["at"] = pd.to_datetime(frame["at"])

        def groupby() -> pd.DataFrame:
            return (
                frame.sort_values("at")
                .groupby("unit", sort=False)
                .agg(arm=("arm", "first"), at=("at", "min"))
            )

        def end_to_end() -> pd.DataFrame:
            read = pd.read_sql("SELECT unit, arm, at FROM decisions WHERE experiment = 'bench'", engine)
            read["at"] = pd.to_datetime(read["at"])
            return (
                read.sort_values("at").groupby("unit", sort=False).agg(arm=("arm", "first"), at=("at", "min"))
            )

        anchor = min(timed(groupby)[0] for _ in range(3))
        pandas_full = min(timed(end_to_end)[0] for _ in range(3))
        best = min(stages["total"])
        print(f"{'step':<58} {'seconds':>8} {'x pandas groupby':>17}")
        print("-" * 85)
        rows = [
            ("report: first exposures (one grouped SQL query)", min(stages["exposures"])),
            ("report: outcome events (one SQL query, JSON revenue)", min(stages["outcomes"])),
            ("report: windows, CUPED, CIs, SRM, verdicts (numpy)", min(stages["statistics"])),
            ("report: total (goal <= 5 s)", best),
            ("service.report('bench') once, with reach and definitions", full),
            ("anchor: pandas groupby of the exposures in memory", anchor),
            ("pandas read_sql of the same rows + that groupby", pandas_full),
        ]
        for name, seconds in rows:
            print(f"{name:<58} {seconds:>8.2f} {seconds / anchor:>16.1f}x")
        at_goal_size = (exposures_n, args.outcomes) == GOAL_SIZE
        record(
            "report",
            f"report over {exposures_n:,} exposures, {args.outcomes:,} outcomes (SQLite)",
            f"{best:.2f} s",
            anchor=f"pandas groupby {anchor:.2f} s",
            ratio=best / anchor,
            goal=f"<= {GOAL_SECONDS:g} s" + ("" if at_goal_size else " at 1M exposures, 100k outcomes"),
            met=best <= GOAL_SECONDS if at_goal_size else None,
        )
        treatment = report["arms"][1]["metrics"]
        print()
        verdicts = [m["verdict"] for m in treatment]
        print(f"verdicts: {verdicts}; CUPED: {report['cuped']}; SRM p = {report['srm']['p_value']:.3f}")
        store.close()


if __name__ == "__main__":
    main()
