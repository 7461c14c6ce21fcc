"""The overview's headline: personalization against the universal holdout, in words a shop owner reads.

The sample size is fixed before anyone looks: the people both arms need to detect `min_lift` (relative, on
conversion, 80% power, 5% two-sided) at the conversion rate seen so far. Until both arms have it, the lift
and its fixed-horizon interval stay hidden: peeking at them and stopping when they look good is how false
wins are made. What shows meanwhile is the always-valid interval, which is safe to read at any time, and how
many more people are needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shopkeeper.experiments.power import sample_size_proportions

ASSUMED_RATE = 0.05  # before any exposed person has converted, the rate the sample size is sized for


@dataclass(frozen=True)
class Headline:
    state: str  # off | collecting | ready
    words: str  # the verdict in words
    detail: str  # how it was worked out
    needed: int | None = None  # people in both arms together
    have: int = 0
    lift: float | None = None  # relative lift in conversion (ready only)
    ci: tuple[float, float] | None = None  # 95% CI of the relative lift (ready only)
    always_valid: tuple[float, float] | None = None  # always-valid CI of the difference in conversion rate
    verdict: str | None = None  # win | loss | inconclusive (ready only)
    holdout_rate: float | None = None
    personalized_rate: float | None = None


def headline(report: dict[str, Any], *, share: float, min_lift: float) -> Headline:
    """From the holdout's report (`ExperimentService.report("holdout")`) and the holdout's share."""
    if report["status"] != "running" or not 0 < share < 1:
        return Headline(
            "off",
            "Lift cannot be measured: the holdout is off, so nobody sees what the shop shows without "
            "personalization.",
            "Set SHOPKEEPER_HOLDOUT_SHARE (for example 0.05) to keep a control group.",
        )
    arms = {arm["arm"]: arm for arm in report["arms"]}
    hold, mine = arms["holdout"], arms["personalized"]
    people = hold["people"] + mine["people"]
    conversions = hold["conversions"] + mine["conversions"]
    rate = conversions / people if conversions else ASSUMED_RATE
    target = min(rate * (1 + min_lift), 1.0)
    ratio = (1 - share) / share
    per_holdout = math.ceil(sample_size_proportions(rate, target, ratio=ratio))
    per_personalized = math.ceil(per_holdout * ratio)
    needed = per_holdout + per_personalized
    metric = mine["metrics"][0] if mine.get("metrics") else None
    always = None
    if metric is not None and metric.get("always_valid_ci_low") is not None:
        always = (metric["always_valid_ci_low"], metric["always_valid_ci_high"])
    sized = (
        f"Sized to detect a {min_lift:.0%} lift in conversion (80% power, 5% two-sided) at a "
        + (
            f"{rate:.1%} conversion rate seen so far"
            if conversions
            else f"{ASSUMED_RATE:.0%} conversion rate (assumed until people convert)"
        )
        + f": {per_holdout:,} people in the holdout and {per_personalized:,} personalized."
    )
    rates = dict(holdout_rate=hold["conversion_rate"], personalized_rate=mine["conversion_rate"])
    if hold["people"] < per_holdout or mine["people"] < per_personalized or metric is None:
        more = max(
            needed - people, max(per_holdout - hold["people"], 0) + max(per_personalized - mine["people"], 0)
        )
        return Headline(
            "collecting",
            f"Not proven yet: {more:,} more {'person' if more == 1 else 'people'} needed to detect a "
            f"{min_lift:.0%} lift.",
            sized,
            needed=needed,
            have=people,
            always_valid=always,
            **rates,
        )
    lift = metric.get("rel_lift")
    ci = (metric["rel_ci_low"], metric["rel_ci_high"]) if metric.get("rel_ci_low") is not None else None
    return Headline(
        "ready",
        metric["summary"],
        sized,
        needed=needed,
        have=people,
        lift=lift,
        ci=ci,
        always_valid=always,
        verdict=metric["verdict"],
        **rates,
    )
