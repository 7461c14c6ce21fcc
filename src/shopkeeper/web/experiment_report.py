"""An experiment's report as the dashboard shows it: power in words, the sequential lift chart, a bandit's
traffic shares per day, and the reach of an experiment's audience. Figures come from the report
(`ExperimentService.report_over_time`) and `shopkeeper.experiments.power`; none is typed in here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from shopkeeper.experiments.power import minimum_detectable_effect_proportions
from shopkeeper.store.experiments import Experiment
from shopkeeper.wording import counted


def _points(value: float | None) -> float | None:
    """A difference of rates as percentage points, rounded for reading (the table shows it as is)."""
    return None if value is None else round(100 * value, 2)


def lift_chart(path: dict[str, Any]) -> dict[str, Any]:
    """Each treatment arm's lift in conversion over the control at the end of each day, with its
    always-valid 95% interval: the view that may be read every day without inflating false wins."""
    control = path["control"]["label"]
    return {
        "title": f"Lift in conversion over {control}, at the end of each day",
        "units": "percentage points",
        "x_label": "day",
        "y_label": "lift",
        "kind": "line",
        "x": path["days"],
        "x_text": [date.fromisoformat(d).strftime("%d %b") for d in path["days"]],
        "x_time": False,
        "series": [
            {
                "label": arm["label"],
                "values": [_points(v) for v in arm["diff"]],
                "low": [_points(v) for v in arm["always_valid_ci_low"]],
                "high": [_points(v) for v in arm["always_valid_ci_high"]],
            }
            for arm in path["arms"]
        ],
    }


def traffic_chart(rows: Sequence[tuple[date, str, int]], arms: list[str]) -> dict[str, Any] | None:
    """A bandit's share of each day's decisions per arm (percent), from `decisions_per_day`."""
    if not rows:
        return None
    days = sorted({day for day, _, _ in rows})
    counts = {(day, arm): n for day, arm, n in rows}
    totals = {day: sum(counts.get((day, arm), 0) for arm in arms) for day in days}
    return {
        "title": "Share of each day's decisions per arm",
        "units": "%",
        "x_label": "day",
        "y_label": "share",
        "kind": "line",
        "x": [d.isoformat() for d in days],
        "x_text": [d.strftime("%d %b") for d in days],
        "x_time": False,
        "series": [
            {
                "label": arm,
                "values": [
                    round(100 * counts.get((day, arm), 0) / totals[day], 1) if totals[day] else None
                    for day in days
                ],
            }
            for arm in arms
        ],
        "decisions": [totals[day] for day in days],
    }


def power(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per treatment arm, on conversion: how many more people the test needs to tell the lift seen so
    far from none (the verdict's `more_people`, 80% power at 5%), and the smallest lift the people so far
    could detect (`minimum_detectable_effect_proportions` at the control's rate and the arms' split)."""
    arms = report["arms"]
    control = arms[0]
    found = []
    for arm in arms[1:]:
        metric = next((m for m in arm["metrics"] if m["metric"] == "conversion"), None)
        entry: dict[str, Any] = {
            "arm": arm["arm"],
            "people": arm["people"],
            "control_people": control["people"],
        }
        if metric is None or control["people"] < 2 or arm["people"] < 2:
            entry["words"] = (
                "Too few people in this arm or the control to work out the power yet (2 each at least)."
            )
            found.append(entry)
            continue
        rate = float(control["conversion_rate"] or 0.0)
        smallest = None
        if rate < 1:
            smallest = minimum_detectable_effect_proportions(
                rate, control["people"], ratio=arm["people"] / control["people"]
            )
        entry.update(more_people=metric["more_people"], more_days=metric["more_days"], rate=rate)
        entry["smallest_points"] = None if smallest is None or math.isinf(smallest) else smallest
        entry["smallest_relative"] = (
            smallest / rate if smallest is not None and not math.isinf(smallest) and rate > 0 else None
        )
        entry["words"] = _power_words(arm["arm"], metric, entry)
        found.append(entry)
    return found


def _power_words(arm: str, metric: dict[str, Any], entry: dict[str, Any]) -> str:
    have = counted(entry["people"] + entry["control_people"], "person", "people")
    if entry["smallest_points"] is None:
        detect = f"With {have} so far, no lift in conversion could be detected yet."
    elif entry["smallest_relative"] is not None:
        detect = (
            f"With {have} so far, the test can detect a lift of {entry['smallest_relative']:.0%} or more "
            f"({100 * entry['smallest_points']:.1f} percentage points on a {entry['rate']:.1%} "
            "conversion rate)."
        )
    else:
        detect = (
            f"With {have} so far, the test can detect a rise of {100 * entry['smallest_points']:.1f} "
            "percentage points or more (nobody in the control has converted yet)."
        )
    if metric["verdict"] != "inconclusive":
        return f"{detect} {arm} already differs from the control beyond doubt."
    more = metric["more_people"]
    if more is None:
        return f"{detect} No difference is seen so far, so no number of people is enough to tell one."
    if more == 0:
        return f"{detect} The lift seen so far is at the edge of what these people can show: keep collecting."
    days = metric["more_days"]
    when = f", about {counted(days, 'more day')} at today's traffic" if days else ""
    people = counted(more, "more person", "more people")
    return f"{detect} To tell the lift seen so far from none: about {people}{when}."


def audience_words(experiment: Experiment) -> str:
    """Who an experiment is for, in words."""
    rule = experiment.audience
    if rule is None:
        return "everyone"
    if "audience" in rule:
        compare = rule.get("compare")
        suffix = " (against an equal random sample of everyone else)" if compare is not None else ""
        return f"audience {rule['audience']}{suffix}"
    if "trait" in rule:
        tests = ", ".join(f"{k} {v}" for k, v in rule.items() if k != "trait")
        return f"trait {rule['trait']} {tests}"
    return "a condition written in place"


def target_of(experiment: Experiment) -> dict[str, Any] | None:
    """What an experiment's reach is worked out for (as its report does)."""
    rule = experiment.audience
    if rule is None:
        return None
    return {"audience": rule["audience"]} if "audience" in rule else rule
