"""Lift statistics against statsmodels/scipy at run time, published values, and hand-computed ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from shopkeeper.experiments.stats import (
    Summary,
    compare_cuped,
    compare_means,
    compare_proportions,
    cuped_theta,
    newcombe_interval,
    relative_lift_interval,
    sample_ratio_mismatch,
    welch_interval,
    wilson_interval,
)

PROPORTION_CASES = [(0, 10), (1, 10), (7, 50), (81, 263), (50, 50), (3, 1000), (4999, 10000)]


@pytest.mark.parametrize(("successes", "n"), PROPORTION_CASES)
def test_wilson_matches_statsmodels(successes: int, n: int) -> None:
    expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert wilson_interval(successes, n) == pytest.approx(expected, abs=1e-12)
    expected90 = proportion_confint(successes, n, alpha=0.10, method="wilson")
    assert wilson_interval(successes, n, confidence=0.90) == pytest.approx(expected90, abs=1e-12)


def test_wilson_published_value() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263: 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("x1", "n1", "x0", "n0"),
    [(56, 70, 48, 80), (9, 10, 3, 10), (0, 10, 0, 20), (10, 10, 0, 10), (40, 1000, 32, 1000), (5, 56, 0, 29)],
)
def test_newcombe_matches_statsmodels(x1: int, n1: int, x0: int, n0: int) -> None:
    low, high = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff", alpha=0.05)
    assert newcombe_interval(x1, n1, x0, n0) == pytest.approx((float(low), float(high)), abs=1e-12)


def test_newcombe_published_value() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions",
    # example (a) 56/70 - 48/80, method 10: +0.0524 to +0.3339.
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_compare_proportions_is_treatment_minus_control() -> None:
    result = compare_proportions(48, 80, 56, 70)
    assert result.kind == "proportion" and result.method == "newcombe"
    assert result.diff == pytest.approx(56 / 70 - 48 / 80)
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (0.0524, 0.3339)
    assert result.rel_lift == pytest.approx((56 / 70) / (48 / 80) - 1)
    assert result.control.variance == pytest.approx(np.var([1] * 48 + [0] * 32, ddof=1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    control = rng.normal(10, 3, 40 + 10 * seed)
    treatment = rng.lognormal(2.3, 0.5, 90)
    expected = stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.95)
    result = compare_means(Summary.of(control), Summary.of(treatment))
    assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), abs=1e-10)
    assert result.diff == pytest.approx(treatment.mean() - control.mean())


def test_welch_frozen_value() -> None:
    # scipy 1.17's ttest_ind([2, 4, 6, 8], [1, 2, 3, 4], equal_var=False) interval, frozen.
    assert welch_interval(Summary.of([1, 2, 3, 4]), Summary.of([2, 4, 6, 8])) == pytest.approx(
        (-1.364167215486198, 6.364167215486198), abs=1e-9
    )


def test_welch_without_spread_and_too_few() -> None:
    assert welch_interval(Summary.of([2, 2]), Summary.of([3, 3, 3])) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        welch_interval(Summary.of([1]), Summary.of([1, 2]))


def test_relative_lift_by_hand() -> None:
    # var = 9 / (100 * 10²) + 4 * 12² / (100 * 10⁴) = 0.001476; half = 1.959964 * sqrt(0.001476)
    rel, low, high = relative_lift_interval(Summary(100, 10.0, 4.0), Summary(100, 12.0, 9.0)) or (0, 0, 0)
    half = stats.norm.ppf(0.975) * math.sqrt(0.001476)
    assert rel == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.2 - half, 0.2 + half), abs=1e-12)
    assert round(low, 4) == 0.1247
    assert relative_lift_interval(Summary(10, 0.0, 0.0), Summary(10, 1.0, 1.0)) is None


def test_relative_lift_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    runs = 1000
    for _ in range(runs):
        control = rng.exponential(10.0, 400)
        treatment = rng.exponential(11.0, 400)
        rel = relative_lift_interval(Summary.of(control), Summary.of(treatment))
        assert rel is not None
        covered += rel[1] <= 0.1 <= rel[2]
    assert 0.93 <= covered / runs <= 0.97


def _cuped_data(seed: int, n: int = 4000, effect: float = 0.3, rho: float = 0.8) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    pre = rng.normal(5.0, 2.0, 2 * n)
    noise = rng.normal(0.0, 2.0 * math.sqrt(1 - rho**2), 2 * n)
    outcome = 3.0 + rho * (pre - 5.0) + noise
    arm = np.repeat([0, 1], n)
    outcome = outcome + effect * arm
    return outcome, pre, arm


def test_cuped_equals_the_regression_with_an_arm_dummy() -> None:
    outcome, pre, arm = _cuped_data(seed=3)
    c, t = arm == 0, arm == 1
    result = compare_cuped(outcome[c], pre[c], outcome[t], pre[t])
    design = sm.add_constant(np.column_stack([arm, pre]))
    fit = sm.OLS(outcome, design).fit()
    assert result.theta == pytest.approx(fit.params[2], rel=1e-10)
    assert result.comparison.diff == pytest.approx(fit.params[1], rel=1e-10)
    assert cuped_theta(outcome[c], pre[c], outcome[t], pre[t]) == pytest.approx(fit.params[2], rel=1e-10)
    # The adjusted interval's width agrees with OLS's to within the Welch-vs-pooled difference.
    width = result.comparison.ci_high - result.comparison.ci_low
    ols_low, ols_high = fit.conf_int(alpha=0.05)[1]
    assert width == pytest.approx(ols_high - ols_low, rel=0.01)


def test_cuped_reduces_variance_by_rho_squared_and_covers_the_effect() -> None:
    outcome, pre, arm = _cuped_data(seed=4, rho=0.8)
    c, t = arm == 0, arm == 1
    result = compare_cuped(outcome[c], pre[c], outcome[t], pre[t])
    assert result.variance_reduction == pytest.approx(0.64, abs=0.03)
    raw_width = result.raw.ci_high - result.raw.ci_low
    width = result.comparison.ci_high - result.comparison.ci_low
    assert width == pytest.approx(raw_width * math.sqrt(1 - 0.64), rel=0.05)
    assert result.comparison.ci_low < 0.3 < result.comparison.ci_high
    assert result.comparison.method == "cuped-welch"


def test_cuped_coverage() -> None:
    covered = 0
    runs = 400
    for seed in range(runs):
        outcome, pre, arm = _cuped_data(seed=1000 + seed, n=300, effect=0.5)
        c, t = arm == 0, arm == 1
        result = compare_cuped(outcome[c], pre[c], outcome[t], pre[t]).comparison
        covered += result.ci_low <= 0.5 <= result.ci_high
    assert 0.92 <= covered / runs <= 0.98


def test_cuped_with_a_constant_covariate_is_plain_welch() -> None:
    rng = np.random.default_rng(5)
    y0, y1 = rng.normal(0, 1, 50), rng.normal(1, 1, 60)
    result = compare_cuped(y0, np.ones(50), y1, np.ones(60))
    assert result.theta == 0.0
    assert (result.comparison.ci_low, result.comparison.ci_high) == pytest.approx(
        (result.raw.ci_low, result.raw.ci_high)
    )


def test_srm_matches_scipy_and_flags_below_one_in_a_thousand() -> None:
    counts, weights = [5000, 5400], [1, 1]
    check = sample_ratio_mismatch(counts, weights)
    expected = stats.chisquare(counts)
    assert (check.chi2, check.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert check.mismatch
    assert check.chi2 == pytest.approx(200**2 / 5200 * 2)
    fine = sample_ratio_mismatch([5000, 5200], [1, 1])
    assert not fine.mismatch and fine.p_value == pytest.approx(0.04767, abs=1e-5)
    weighted = sample_ratio_mismatch([9000, 1000, 1040], [90, 10, 10])
    expected = stats.chisquare([9000, 1000, 1040], f_exp=np.array([90, 10, 10]) / 110 * 11040)
    assert weighted.p_value == pytest.approx(expected.pvalue)
    with pytest.raises(ValueError):
        sample_ratio_mismatch([1, 2], [1])
