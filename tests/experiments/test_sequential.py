"""Always-valid intervals: the formula by hand, its duality with the mSPRT, and daily peeking under A/A."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopkeeper.experiments.sequential import (
    always_valid_interval,
    mixture_half_width,
    mixture_likelihood_ratio,
    optimal_ratio,
    tuned_tau2,
)
from shopkeeper.experiments.stats import Summary, welch_interval


def test_half_width_by_hand() -> None:
    # V = 1, tau² = 1, alpha = 0.05: sqrt(1 * 2 / 1 * (2 ln 20 + ln 2)) = 3.6564...
    assert mixture_half_width(1.0, 1.0, 0.05) == pytest.approx(
        math.sqrt(2 * (2 * math.log(20) + math.log(2)))
    )
    assert round(mixture_half_width(1.0, 1.0, 0.05), 4) == 3.6564
    assert mixture_half_width(0.0, 1.0) == 0.0


def test_the_interval_is_where_the_mixture_ratio_stays_below_one_over_alpha() -> None:
    variance, tau2 = 0.04, 0.3
    half = mixture_half_width(variance, tau2, 0.05)
    assert mixture_likelihood_ratio(1.0 + half, variance, tau2, null=1.0) == pytest.approx(20.0, rel=1e-9)
    assert mixture_likelihood_ratio(1.0 + 0.99 * half, variance, tau2, null=1.0) < 20.0


def test_optimal_ratio_minimises_the_width() -> None:
    r = optimal_ratio(0.05)
    assert r == pytest.approx(8.21, abs=0.01)
    widths = [mixture_half_width(1.0, k, 0.05) for k in (r * 0.8, r, r * 1.25)]
    assert widths[1] < widths[0] and widths[1] < widths[2]


def test_wider_than_the_fixed_interval_and_tightest_near_the_planned_size() -> None:
    rng = np.random.default_rng(0)
    control, treatment = Summary.of(rng.normal(0, 1, 5000)), Summary.of(rng.normal(0.1, 1, 5000))
    fixed = welch_interval(control, treatment)
    low, high = always_valid_interval(control, treatment, planned_n_per_arm=5000)
    assert low < fixed[0] and high > fixed[1]
    assert (low + high) / 2 == pytest.approx(treatment.mean - control.mean)
    # At the planned size, the price of peeking is a modest factor on the width (about 1.8 at 95%).
    assert 1.5 < (high - low) / (fixed[1] - fixed[0]) < 2.2
    tau2 = tuned_tau2(control, treatment, planned_n_per_arm=5000)
    assert tau2 == pytest.approx(optimal_ratio() * (control.variance + treatment.variance) / 5000)


def test_daily_peeking_at_an_aa_test_keeps_false_wins_below_alpha() -> None:
    """Under no effect, naive daily looks at the fixed 95% CI find a 'significant' lift far more often
    than 5% of the time; the always-valid interval does not."""
    rng = np.random.default_rng(42)
    experiments, days, per_day = 1000, 30, 100
    control = rng.normal(0, 1, (experiments, days, per_day)).reshape(experiments, days * per_day)
    treatment = rng.normal(0, 1, (experiments, days, per_day)).reshape(experiments, days * per_day)
    naive = np.zeros(experiments, dtype=bool)
    valid = np.zeros(experiments, dtype=bool)
    for day in range(1, days + 1):
        n = day * per_day
        d = treatment[:, :n].mean(axis=1) - control[:, :n].mean(axis=1)
        variance = treatment[:, :n].var(axis=1, ddof=1) / n + control[:, :n].var(axis=1, ddof=1) / n
        naive |= np.abs(d) > 1.959964 * np.sqrt(variance)
        tau2 = optimal_ratio() * 2.0 / (days * per_day)
        half = np.array([mixture_half_width(v, tau2) for v in variance])
        valid |= np.abs(d) > half
    assert naive.mean() > 0.15  # peeking at the fixed interval inflates false positives several-fold
    assert valid.mean() <= 0.05
