"""The plain-language verdict: win, loss, or "not proven yet, need about N more people".

A win needs every interval shown to exclude zero on the good side: the difference's (Newcombe or Welch)
and, when the control mean is not zero, the relative lift's (delta method). A loss is the same on the
bad side. Anything else is inconclusive, and then the power calculation says how many more people (all
arms together, at the current split) a test needs to detect the lift seen so far with 80% power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from shopkeeper.experiments.power import run_length, sample_size_means, sample_size_proportions
from shopkeeper.experiments.stats import Comparison
from shopkeeper.wording import counted

VerdictKind = Literal["win", "loss", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    """The verdict on one metric, its one-sentence summary, and how much longer to run if inconclusive."""

    verdict: VerdictKind
    summary: str
    more_people: int | None = None
    more_days: int | None = None


def _percent(value: float) -> str:
    scaled = value * 100
    return f"{scaled:.1f}%" if abs(scaled) >= 0.1 or scaled == 0 else f"{scaled:.2g}%"


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def judge(comparison: Comparison, higher_is_better: bool = True) -> VerdictKind:
    """win / loss / inconclusive from the intervals alone: never a win whose interval crosses zero."""
    lows = [comparison.ci_low]
    highs = [comparison.ci_high]
    if comparison.rel_ci_low is not None and comparison.rel_ci_high is not None:
        lows.append(comparison.rel_ci_low)
        highs.append(comparison.rel_ci_high)
    above = all(low > 0 for low in lows)
    below = all(high < 0 for high in highs)
    if above:
        return "win" if higher_is_better else "loss"
    if below:
        return "loss" if higher_is_better else "win"
    return "inconclusive"


def more_people_needed(comparison: Comparison, power: float = 0.8) -> int | None:
    """People still needed (all arms) to detect the observed lift; None when the lift seen is zero."""
    control, treatment = comparison.control, comparison.treatment
    ratio = treatment.n / control.n
    alpha = 1 - comparison.confidence
    if comparison.diff == 0:
        return None
    if comparison.kind == "proportion":
        target = min(1.0, max(0.0, control.mean + comparison.diff))
        n_control = sample_size_proportions(control.mean, target, alpha, power, ratio)
    else:
        if comparison.pooled_sd == 0:
            return None
        n_control = sample_size_means(abs(comparison.diff), comparison.pooled_sd, alpha, power, ratio)
    if math.isinf(n_control):
        return None
    return run_length(n_control, ratio, control.n + treatment.n).more_people


def _lift_text(comparison: Comparison) -> tuple[str, str, str]:
    """The lift and its interval as text: relative when there is a relative lift with a real interval,
    else absolute (in percentage points for a proportion)."""
    low, high = comparison.rel_ci_low, comparison.rel_ci_high
    if comparison.rel_lift is not None and low is not None and high is not None:
        degenerate = low == high and comparison.ci_low < comparison.ci_high
        if not degenerate:
            return _percent(comparison.rel_lift), _percent(low), _percent(high)
    if comparison.kind == "proportion":
        diff, ci_low, ci_high = (
            f"{v * 100:.1f} points" for v in (comparison.diff, comparison.ci_low, comparison.ci_high)
        )
        return diff, ci_low, ci_high
    return _number(comparison.diff), _number(comparison.ci_low), _number(comparison.ci_high)


def verdict(
    comparison: Comparison,
    treatment: str = "treatment",
    control: str = "control",
    metric: str | None = None,
    higher_is_better: bool = True,
    daily_traffic: float | None = None,
) -> Verdict:
    """The verdict and a one-sentence summary, e.g. "B beats A by 12.3% (95% CI 4.1% to 20.5%).\""""
    kind = judge(comparison, higher_is_better)
    lift, low, high = _lift_text(comparison)
    level = f"{comparison.confidence * 100:g}% CI"
    on = f" on {metric}" if metric else ""
    if kind == "win" or kind == "loss":
        better = (comparison.diff > 0) == higher_is_better
        if better:
            return Verdict(
                kind, f"{treatment} beats {control}{on} by {lift.lstrip('-')} ({level} {low} to {high})."
            )
        return Verdict(
            kind,
            f"{control} is better: {treatment} does worse{on} by {lift.lstrip('-')} "
            f"({level} {low} to {high}).",
        )
    sign = "+" if comparison.diff > 0 else ""
    more = more_people_needed(comparison)
    days = None
    if more is None:
        tail = "no difference seen so far"
    elif more == 0:
        tail = "the lift seen so far is at the edge of what this sample can show; keep collecting"
    else:
        days = None if not daily_traffic or daily_traffic <= 0 else math.ceil(more / daily_traffic)
        tail = f"need about {counted(more, 'more person', 'more people')}"
        if days is not None:
            tail += f" (about {counted(days, 'more day')} at {daily_traffic:,.0f} a day)"
    summary = (
        f"{treatment} is not distinguishable from {control}{on} yet "
        f"({sign}{lift}, {level} {low} to {high}); {tail}."
    )
    return Verdict("inconclusive", summary, more_people=more, more_days=days)
