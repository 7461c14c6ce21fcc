"""Always-valid confidence intervals, so that looking at a report every day does not inflate false wins.

The interval is the normal-mixture confidence sequence behind the mixture SPRT (Robbins 1970; Johari,
Koomen, Pekelis and Walsh, "Always valid inference", 2017/2022). For an estimate `d` of the lift with
variance `V` (here Welch's `s1²/n1 + s0²/n0`) and a normal mixing distribution N(0, tau²) over the true
lift, the mixture likelihood ratio against a true lift `delta` is

    sqrt(V / (V + tau²)) * exp(tau² (d - delta)² / (2 V (V + tau²)))

and the set of `delta` where it stays below 1/alpha is

    d ± sqrt(V (V + tau²) / tau² * (2 ln(1/alpha) + ln((V + tau²) / V))).

By Ville's inequality the chance that this interval ever misses the true lift, at any of any number of
looks, is at most alpha (asymptotically, as the estimate becomes normal). The price is a wider interval
than the fixed-sample one at any single look.

`tau²` sets where the interval is tightest. By default it is tuned, as GrowthBook does, for a planned
sample size: `tau² = r* · (s1² + s0²) / planned_n_per_arm`, where `r*` minimises the half-width's
factor `(1 + r) / r · (2 ln(1/alpha) + ln(1 + r))` (r* ≈ 8.2 at alpha = 0.05).
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy.optimize import minimize_scalar

from shopkeeper.experiments.stats import Summary

DEFAULT_PLANNED_N_PER_ARM = 5_000


def mixture_half_width(variance: float, tau2: float, alpha: float = 0.05) -> float:
    """The half-width of the always-valid interval for an estimate with this variance."""
    if variance < 0 or tau2 <= 0 or not 0 < alpha < 1:
        raise ValueError("need variance >= 0, tau2 > 0 and 0 < alpha < 1")
    if variance == 0:
        return 0.0
    return math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )


def mixture_likelihood_ratio(estimate: float, variance: float, tau2: float, null: float = 0.0) -> float:
    """The mixture SPRT statistic against `null`: reject (at any look) once it reaches 1 / alpha."""
    return math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * (estimate - null) ** 2 / (2 * variance * (variance + tau2))
    )


@lru_cache(maxsize=32)
def optimal_ratio(alpha: float = 0.05) -> float:
    """The r = tau² / V that makes the always-valid interval narrowest at variance V."""
    log_alpha = 2 * math.log(1 / alpha)
    result = minimize_scalar(
        lambda log_r: (
            math.log((1 + math.exp(log_r)) / math.exp(log_r))
            + math.log(log_alpha + math.log1p(math.exp(log_r)))
        ),
        bounds=(-10.0, 10.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(math.exp(result.x))


def tuned_tau2(
    control: Summary,
    treatment: Summary,
    planned_n_per_arm: int = DEFAULT_PLANNED_N_PER_ARM,
    alpha: float = 0.05,
) -> float:
    """The mixing variance that makes the interval tightest when each arm has `planned_n_per_arm` people."""
    if planned_n_per_arm <= 0:
        raise ValueError("the planned sample size must be positive")
    scale = (control.variance + treatment.variance) / planned_n_per_arm
    return optimal_ratio(alpha) * scale if scale > 0 else 1e-12


def always_valid_interval(
    control: Summary,
    treatment: Summary,
    alpha: float = 0.05,
    tau2: float | None = None,
    planned_n_per_arm: int = DEFAULT_PLANNED_N_PER_ARM,
) -> tuple[float, float]:
    """The always-valid (1 - alpha) interval for mean_treatment - mean_control."""
    diff = treatment.mean - control.mean
    variance = treatment.variance / treatment.n + control.variance / control.n
    mixing = tuned_tau2(control, treatment, planned_n_per_arm, alpha) if tau2 is None else tau2
    half = mixture_half_width(variance, mixing, alpha)
    return diff - half, diff + half
