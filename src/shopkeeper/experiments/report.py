"""The verdict report of an experiment or of the holdout: per arm, people, conversions, revenue, lift.

Outcomes are read from events within the attribution window after each person's first exposure
(`first <= t < first + window`):
- conversion: any "Order Completed" (a proportion: Newcombe's interval);
- revenue per exposed person: the orders' revenue (a mean: Welch), with CUPED when some people bought
  in the pre-period, the same number of days before their first exposure;
- each named outcome event: whether the person sent it (a proportion).
Every treatment arm is compared with the control (the first arm) by
`shopkeeper.experiments.analysis.compare_metric`: the difference and relative lift with 95% CIs, the
always-valid interval, and the verdict, which is never a win when an interval crosses zero. Every report
checks the sample ratio against the traffic weights (not for bandits, which move traffic on purpose) and
gives each arm's probability of being best on conversion (Beta posteriors with a uniform prior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from shopkeeper.experiments.analysis import compare_metric
from shopkeeper.experiments.bandit import probability_best
from shopkeeper.experiments.sequential import lift_path
from shopkeeper.experiments.stats import sample_ratio_mismatch
from shopkeeper.store.experiments import Exposures, Outcomes

DAY = 86_400.0
PRIMARY = "conversion"


@dataclass(frozen=True)
class ReportSpec:
    """What a report needs to know of its experiment. `labels` name the arms in sentences."""

    name: str
    kind: str  # ab | bandit | holdout
    placement: str
    status: str
    arms: list[str]
    labels: list[str]
    shares: list[float] | None  # intended traffic shares; None: no SRM test (bandits)
    window_days: int
    outcome_events: list[str]
    audience: dict[str, Any] | None = None


@dataclass(frozen=True)
class PersonOutcomes:
    """One value per exposed person: converted, revenue in the window, revenue in the pre-period,
    and, per named event, whether they sent it in the window."""

    converted: npt.NDArray[np.bool_]
    revenue: npt.NDArray[np.float64]
    pre_revenue: npt.NDArray[np.float64]
    named: list[npt.NDArray[np.bool_]]


def outcome_span(exposures: Exposures, window_days: int) -> tuple[datetime, datetime]:
    """The events a report needs: from a pre-period of `window_days` before the first exposure to the
    end of the last exposure's window."""
    if exposures.first_at.size == 0:
        now = datetime.now(UTC)
        return now, now
    day = timedelta(days=window_days)
    start = datetime.fromtimestamp(float(exposures.first_at.min()), UTC) - day
    end = datetime.fromtimestamp(float(exposures.first_at.max()), UTC) + day
    return start, end


def _owner(exposures: Exposures, outcomes: Outcomes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """For each outcome event, the index of the exposed person it belongs to, and whether there is one."""
    order = np.argsort(exposures.person, kind="stable")
    persons = exposures.person[order]
    position = np.searchsorted(persons, outcomes.person)
    inside = position < persons.size
    found = np.zeros(outcomes.person.size, np.bool_)
    found[inside] = persons[position[inside]] == outcomes.person[inside]
    found &= outcomes.person >= 0
    owner = np.zeros(outcomes.person.size, np.int64)
    owner[found] = order[position[found]]
    return owner, found


def person_outcomes(
    exposures: Exposures, outcomes: Outcomes, window_days: int, n_named: int
) -> PersonOutcomes:
    n = exposures.arm.size
    owner, found = _owner(exposures, outcomes)
    owner, at, kind, revenue = owner[found], outcomes.at[found], outcomes.kind[found], outcomes.revenue[found]
    since = at - exposures.first_at[owner]
    window = window_days * DAY
    within = (since >= 0) & (since < window)
    before = (since < 0) & (since >= -window)
    order = kind == 0
    hit = owner[within & order]
    converted = np.bincount(hit, minlength=n) > 0
    spent = np.bincount(hit, weights=revenue[within & order], minlength=n).astype(np.float64)
    pre = np.bincount(owner[before & order], weights=revenue[before & order], minlength=n).astype(np.float64)
    named = [np.bincount(owner[within & (kind == 1 + i)], minlength=n) > 0 for i in range(n_named)]
    return PersonOutcomes(converted, spent, pre, named)


def first_conversion_at(
    exposures: Exposures, outcomes: Outcomes, window_days: int
) -> npt.NDArray[np.float64]:
    """When each exposed person first bought within the window after their first exposure (epoch
    seconds; inf for those who did not): the moment they count as converted in a report."""
    owner, found = _owner(exposures, outcomes)
    owner, at = owner[found], outcomes.at[found]
    since = at - exposures.first_at[owner]
    bought = (outcomes.kind[found] == 0) & (since >= 0) & (since < window_days * DAY)
    first = np.full(exposures.arm.size, np.inf)
    np.minimum.at(first, owner[bought], at[bought])
    return first


def lift_over_time(
    spec: ReportSpec, exposures: Exposures, outcomes: Outcomes, *, now: datetime, points: int = 30
) -> dict[str, Any]:
    """The sequential view, JSON-ready: at the end of each day since the first exposure (at most `points`
    days, evenly spread; the last look is now, and counts what the report counts), each treatment arm's
    difference in conversion rate from the control with its always-valid 95% interval."""
    if exposures.first_at.size == 0:
        return {"looks": [], "arms": []}
    first_day = datetime.fromtimestamp(float(exposures.first_at.min()), UTC).date()
    days = (now.date() - first_day).days + 1
    chosen = np.unique(np.linspace(0, days - 1, min(points, days)).round().astype(np.int64))
    ends = [
        datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(days=int(d) + 1) for d in chosen
    ]
    looks = np.asarray([min(end, now).timestamp() for end in ends], np.float64)
    looks[-1] = np.inf  # the last look counts all the report counts (an order stamped later today too)
    path = lift_path(
        exposures.arm,
        exposures.first_at,
        first_conversion_at(exposures, outcomes, spec.window_days),
        looks,
        len(spec.arms),
    )
    arms = []
    for k, arm in enumerate(spec.arms[1:]):
        arms.append(
            {
                "arm": arm,
                "label": spec.labels[k + 1],
                "people": path.people[k].tolist(),
                "conversions": path.conversions[k].tolist(),
                "diff": _finite(path.diff[k].tolist()),
                "always_valid_ci_low": _finite(path.low[k].tolist()),
                "always_valid_ci_high": _finite(path.high[k].tolist()),
            }
        )
    return {
        "looks": [min(end, now).isoformat() for end in ends],
        "days": [(end - timedelta(days=1)).date().isoformat() for end in ends],
        "control": {
            "arm": spec.arms[0],
            "label": spec.labels[0],
            "people": path.control_people.tolist(),
            "conversions": path.control_conversions.tolist(),
        },
        "arms": arms,
    }


def conversions_by_person(
    exposures: Exposures, outcomes: Outcomes, window_days: int
) -> npt.NDArray[np.bool_]:
    """Whether each exposed person bought within the window (a bandit's reward)."""
    return person_outcomes(exposures, outcomes, window_days, 0).converted


def _srm(spec: ReportSpec, counts: list[int]) -> dict[str, Any]:
    if spec.shares is None:
        return {
            "checked": False,
            "reason": "a bandit moves traffic between arms on purpose, so there is no fixed ratio to check",
        }
    if sum(counts) == 0:
        return {"checked": False, "reason": "nobody has been exposed yet"}
    check = sample_ratio_mismatch(counts, spec.shares)
    return {
        "checked": True,
        "mismatch": check.mismatch,
        "p_value": check.p_value,
        "chi2": check.chi2,
        "expected": {arm: round(e, 1) for arm, e in zip(spec.arms, check.expected, strict=True)},
    }


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def build_report(
    spec: ReportSpec, exposures: Exposures, outcomes: Outcomes, reach: dict[str, Any], *, now: datetime
) -> dict[str, Any]:
    """The report as JSON-ready values (the CLI's and the API's `--json` shape)."""
    per = person_outcomes(exposures, outcomes, spec.window_days, len(spec.outcome_events))
    k = len(spec.arms)
    counts = np.bincount(exposures.arm, minlength=k)
    conversions = np.bincount(exposures.arm, weights=per.converted, minlength=k)
    revenue = np.bincount(exposures.arm, weights=per.revenue, minlength=k)
    best = probability_best(1 + conversions, 1 + counts - conversions)
    days = (now.timestamp() - float(exposures.first_at.min())) / DAY if exposures.first_at.size else 0.0
    daily = exposures.arm.size / max(days, 1.0) if exposures.arm.size else None
    use_pre = bool((per.pre_revenue != 0).any())
    control = exposures.arm == 0
    arms: list[dict[str, Any]] = []
    summary: list[str] = []
    for i, arm in enumerate(spec.arms):
        mask = exposures.arm == i
        entry: dict[str, Any] = {
            "arm": arm,
            "people": int(counts[i]),
            "share": float(counts[i] / counts.sum()) if counts.sum() else None,
            "conversions": int(conversions[i]),
            "conversion_rate": float(conversions[i] / counts[i]) if counts[i] else None,
            "revenue": float(revenue[i]),
            "revenue_per_person": float(revenue[i] / counts[i]) if counts[i] else None,
            "events": {name: int(per.named[j][mask].sum()) for j, name in enumerate(spec.outcome_events)},
            "probability_best": float(best[i]),
            "metrics": [],
        }
        if i > 0:
            if counts[i] < 2 or counts[0] < 2:
                entry["note"] = "too few people in this arm or the control to compare yet (at least 2 each)"
                summary.append(f"{spec.labels[i]}: too few people to compare with {spec.labels[0]} yet.")
            else:
                entry["metrics"] = _compare(spec, i, per, control, mask, use_pre, daily)
                summary.append(entry["metrics"][0]["summary"])
        arms.append(entry)
    srm = _srm(spec, [int(c) for c in counts])
    if srm.get("mismatch"):
        summary.insert(
            0,
            f"Warning: sample ratio mismatch (p = {srm['p_value']:.2g}): the arms' sizes are not what the "
            "traffic weights promise, so do not trust these lifts until the cause is found.",
        )
    report = {
        "name": spec.name,
        "kind": spec.kind,
        "placement": spec.placement,
        "status": spec.status,
        "control": spec.arms[0],
        "window_days": spec.window_days,
        "primary_metric": PRIMARY,
        "audience": spec.audience,
        "reach": reach,
        "people": int(exposures.arm.size),
        "excluded_no_consent": exposures.excluded,
        "window_open": int((exposures.first_at + spec.window_days * DAY > now.timestamp()).sum()),
        "cuped": use_pre,
        "srm": srm,
        "trustworthy": not srm.get("mismatch", False),
        "arms": arms,
        "summary": summary,
    }
    cleaned: dict[str, Any] = _finite(report)
    return cleaned


def _compare(
    spec: ReportSpec,
    i: int,
    per: PersonOutcomes,
    control: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.bool_],
    use_pre: bool,
    daily: float | None,
) -> list[dict[str, Any]]:
    treatment_name, control_name = spec.labels[i], spec.labels[0]
    found = [
        compare_metric(
            PRIMARY,
            per.converted[control].astype(np.float64),
            per.converted[mask].astype(np.float64),
            "proportion",
            treatment_name=treatment_name,
            control_name=control_name,
            daily_traffic=daily,
        ),
        compare_metric(
            "revenue",
            per.revenue[control],
            per.revenue[mask],
            "mean",
            per.pre_revenue[control] if use_pre else None,
            per.pre_revenue[mask] if use_pre else None,
            treatment_name=treatment_name,
            control_name=control_name,
            daily_traffic=daily,
        ),
    ]
    for j, name in enumerate(spec.outcome_events):
        found.append(
            compare_metric(
                name,
                per.named[j][control].astype(np.float64),
                per.named[j][mask].astype(np.float64),
                "proportion",
                treatment_name=treatment_name,
                control_name=control_name,
                daily_traffic=daily,
            )
        )
    return found
