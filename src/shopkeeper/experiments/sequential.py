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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
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


@dataclass(frozen=True)
class LiftPath:
    """Treatment arm k against the control (arm 0) at each look: people and conversions in both, the
    difference in conversion rate and its always-valid interval (nan where either arm had fewer than 2
    people). Arrays are (treatment arms, looks)."""

    control_people: npt.NDArray[np.int64]  # (looks,)
    control_conversions: npt.NDArray[np.int64]  # (looks,)
    people: npt.NDArray[np.int64]
    conversions: npt.NDArray[np.int64]
    diff: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]


def lift_path(
    arm: npt.NDArray[np.int64],
    first_at: npt.NDArray[np.float64],
    converted_at: npt.NDArray[np.float64],
    looks: npt.NDArray[np.float64],
    n_arms: int,
    alpha: float = 0.05,
) -> LiftPath:
    """The sequential view of a conversion test: at each look (a time, epoch seconds), the people first
    exposed before it and those of them who had converted before it (`converted_at`: each person's first
    conversion, inf for none), and each treatment arm's difference in conversion rate from the control
    with its always-valid interval, which may be read at every look without inflating false wins."""
    looks = np.asarray(looks, np.float64)
    treatments = max(n_arms - 1, 0)
    people = np.zeros((n_arms, looks.size), np.int64)
    converted = np.zeros((n_arms, looks.size), np.int64)
    for j, look in enumerate(looks):
        people[:, j] = np.bincount(arm[first_at < look], minlength=n_arms)[:n_arms]
        converted[:, j] = np.bincount(arm[converted_at < look], minlength=n_arms)[:n_arms]
    diff, low, high = (np.full((treatments, looks.size), np.nan) for _ in range(3))
    for k in range(1, n_arms):
        for j in range(looks.size):
            n0, n1 = int(people[0, j]), int(people[k, j])
            if n0 < 2 or n1 < 2:
                continue
            control = Summary.of_proportion(int(converted[0, j]), n0)
            treatment = Summary.of_proportion(int(converted[k, j]), n1)
            diff[k - 1, j] = treatment.mean - control.mean
            valid_low, valid_high = always_valid_interval(control, treatment, alpha)
            # a difference of two rates lies in [-1, 1], as the report's interval (analysis.compare_metric)
            low[k - 1, j], high[k - 1, j] = max(valid_low, -1.0), min(valid_high, 1.0)
    return LiftPath(people[0], converted[0], people[1:], converted[1:], diff, low, high)
