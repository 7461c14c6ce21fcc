"""Power, sample size and minimum detectable effect: how long must a small shop's test run?

- Proportions use Cohen's effect size h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) and the two-sided normal
  test, as statsmodels' `NormalIndPower` with `proportion_effectsize` does.
- Means use the standardised difference d = difference / sd and the two-sided two-sample t test with
  the noncentral t distribution, as statsmodels' `tt_ind_solve_power` does.

`ratio` is n_treatment / n_control; sample sizes are for the control arm (treatment = ratio * control)
and are returned unrounded (round them up).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scipy import stats
from scipy.optimize import brentq

PowerFunction = Callable[[float, float, float, float], float]  # (effect, n_control, alpha, ratio)


def cohens_h(p_treatment: float, p_control: float) -> float:
    """The arcsine effect size between two proportions."""
    return 2 * math.asin(math.sqrt(p_treatment)) - 2 * math.asin(math.sqrt(p_control))


def _check(alpha: float, power: float, ratio: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1 or ratio <= 0:
        raise ValueError("need 0 < alpha < 1, 0 < power < 1 and ratio > 0")


def normal_power(effect_size: float, n_control: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """The power of the two-sided normal test of a standardised effect with these sample sizes."""
    shift = abs(effect_size) * math.sqrt(n_control / (1 + 1 / ratio))
    critical = float(stats.norm.isf(alpha / 2))
    return float(stats.norm.sf(critical - shift) + stats.norm.cdf(-critical - shift))


def t_power(effect_size: float, n_control: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """The power of the two-sided two-sample t test (equal variances) of a standardised effect."""
    n_treatment = ratio * n_control
    df = n_control + n_treatment - 2
    noncentrality = abs(effect_size) * math.sqrt(n_control * n_treatment / (n_control + n_treatment))
    critical = float(stats.t.isf(alpha / 2, df))
    upper = float(stats.nct.sf(critical, df, noncentrality))
    lower = float(stats.nct.cdf(-critical, df, noncentrality))  # scipy gives nan far out in the tail
    return upper + (lower if math.isfinite(lower) else 0.0)


def _solve_n(
    function: PowerFunction, effect_size: float, alpha: float, power: float, ratio: float, low: float
) -> float:
    _check(alpha, power, ratio)
    if abs(effect_size) < 1e-6:  # over 10**13 people: never, in practice
        return math.inf
    guess = ((stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) / abs(effect_size)) ** 2 * (1 + 1 / ratio)
    high = max(4 * float(guess), low * 2)
    while function(effect_size, high, alpha, ratio) < power:
        high *= 2
    return float(brentq(lambda n: function(effect_size, n, alpha, ratio) - power, low, high, xtol=1e-10))


def sample_size_proportions(
    p_control: float, p_treatment: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """People needed in the control arm to detect p_control -> p_treatment."""
    if not (0 <= p_control <= 1 and 0 <= p_treatment <= 1):
        raise ValueError("proportions must be between 0 and 1")
    return _solve_n(normal_power, cohens_h(p_treatment, p_control), alpha, power, ratio, low=1e-6)


def sample_size_means(
    difference: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """People needed in the control arm to detect a difference of means, given the outcome's sd."""
    if sd <= 0:
        raise ValueError("the standard deviation must be positive")
    low = 1.0 + 1.0 / ratio + 1e-6  # at least 2 people in all, so the t test has a degree of freedom
    return _solve_n(t_power, difference / sd, alpha, power, ratio, low=max(low, 1.01))


def _solve_effect(
    function: PowerFunction, n_control: float, alpha: float, power: float, ratio: float
) -> float:
    _check(alpha, power, ratio)
    high = 1.0
    while function(high, n_control, alpha, ratio) < power:
        high *= 2
        if high > 1e6:
            return math.inf
    return float(brentq(lambda e: function(e, n_control, alpha, ratio) - power, 1e-12, high, xtol=1e-12))


def minimum_detectable_effect_proportions(
    p_control: float, n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """The smallest rise of a proportion (absolute, p_treatment - p_control) these sample sizes detect.

    Returns inf when not even p_treatment = 1 would be detected.
    """
    if not 0 <= p_control < 1:
        raise ValueError("the control proportion must be in [0, 1)")
    h = _solve_effect(normal_power, n_control, alpha, power, ratio)
    angle = h / 2 + math.asin(math.sqrt(p_control))
    if angle >= math.pi / 2:
        return math.inf
    return math.sin(angle) ** 2 - p_control


def minimum_detectable_effect_means(
    sd: float, n_control: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """The smallest difference of means these sample sizes detect, given the outcome's sd."""
    if sd <= 0:
        raise ValueError("the standard deviation must be positive")
    return _solve_effect(t_power, n_control, alpha, power, ratio) * sd


@dataclass(frozen=True)
class RunLength:
    """How much longer a test must run: people needed in all arms, how many more, and days at the traffic.

    `needed_total` and `more_people` are None when no sample size is enough (a zero effect).
    """

    needed_total: int | None
    have_total: int
    more_people: int | None
    days: int | None


def run_length(
    n_control_needed: float, ratio: float, have_total: int, daily_traffic: float | None = None
) -> RunLength:
    """Turn a per-control-arm sample size into "about N more people, D more days"."""
    if math.isinf(n_control_needed):
        return RunLength(needed_total=None, have_total=have_total, more_people=None, days=None)
    needed = math.ceil(n_control_needed - 1e-9) + math.ceil(ratio * n_control_needed - 1e-9)
    more = max(0, needed - have_total)
    days = None if not daily_traffic or daily_traffic <= 0 else math.ceil(more / daily_traffic)
    return RunLength(needed_total=needed, have_total=have_total, more_people=more, days=days)
