"""Power, sample size and MDE against statsmodels at run time and textbook values."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower, tt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from shopkeeper.experiments.power import (
    minimum_detectable_effect_means,
    minimum_detectable_effect_proportions,
    normal_power,
    run_length,
    sample_size_means,
    sample_size_proportions,
    t_power,
)


@pytest.mark.parametrize(
    ("p0", "p1", "alpha", "power", "ratio"),
    [
        (0.10, 0.12, 0.05, 0.8, 1.0),
        (0.02, 0.025, 0.05, 0.9, 1.0),
        (0.5, 0.4, 0.01, 0.8, 2.0),
        (0.03, 0.05, 0.1, 0.8, 0.5),
    ],
)
def test_sample_size_proportions_matches_statsmodels(
    p0: float, p1: float, alpha: float, power: float, ratio: float
) -> None:
    expected = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(p1, p0), alpha=alpha, power=power, ratio=ratio
    )
    assert sample_size_proportions(p0, p1, alpha, power, ratio) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("d", "alpha", "power", "ratio"),
    [(0.5, 0.05, 0.8, 1.0), (0.2, 0.05, 0.9, 0.5), (0.05, 0.01, 0.8, 3.0), (2.0, 0.05, 0.8, 1.0)],
)
def test_sample_size_means_matches_statsmodels(d: float, alpha: float, power: float, ratio: float) -> None:
    expected = tt_ind_solve_power(effect_size=d, alpha=alpha, power=power, ratio=ratio)
    assert sample_size_means(d * 7.0, 7.0, alpha, power, ratio) == pytest.approx(expected, rel=1e-6)


def test_textbook_values() -> None:
    # Cohen: a medium effect (d = 0.5) needs 64 per group at alpha 0.05, power 0.8.
    assert math.ceil(sample_size_means(0.5, 1.0)) == 64
    assert sample_size_means(0.5, 1.0) == pytest.approx(63.7656, abs=1e-4)
    assert sample_size_proportions(0.10, 0.12) == pytest.approx(3834.5957, abs=1e-3)
    assert sample_size_proportions(0.1, 0.1) == math.inf


@pytest.mark.parametrize("n", [50.0, 393.4, 10_000.0])
def test_mde_inverts_sample_size(n: float) -> None:
    mde = minimum_detectable_effect_means(3.0, n)
    # statsmodels' effect-size solver stops early (its answer has power 0.799997 at n = 50), so compare
    # loosely with its answer and exactly with its power function.
    assert mde == pytest.approx(3.0 * tt_ind_solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=1.0), rel=1e-4)
    assert TTestIndPower().power(mde / 3.0, n, 0.05, 1.0) == pytest.approx(0.8, abs=1e-9)
    assert sample_size_means(mde, 3.0) == pytest.approx(n, rel=1e-6)
    rise = minimum_detectable_effect_proportions(0.05, n)
    if math.isfinite(rise):
        h = NormalIndPower().solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=1.0)
        assert proportion_effectsize(0.05 + rise, 0.05) == pytest.approx(h, rel=1e-4)
        assert sample_size_proportions(0.05, 0.05 + rise) == pytest.approx(n, rel=1e-6)


def test_power_functions_agree_with_statsmodels() -> None:
    assert normal_power(0.1, 1000, 0.05, 1.5) == pytest.approx(
        NormalIndPower().power(effect_size=0.1, nobs1=1000, alpha=0.05, ratio=1.5), rel=1e-9
    )
    assert t_power(0.3, 40) == pytest.approx(
        float(tt_ind_solve_power(effect_size=0.3, nobs1=40, alpha=0.05, ratio=1.0)), rel=1e-9
    )


def test_run_length_in_people_and_days() -> None:
    length = run_length(3834.6, ratio=1.0, have_total=1000, daily_traffic=300)
    assert (length.needed_total, length.more_people, length.days) == (7670, 6670, 23)
    done = run_length(100.0, ratio=2.0, have_total=1000, daily_traffic=10)
    assert (done.needed_total, done.more_people, done.days) == (300, 0, 0)
    never = run_length(math.inf, ratio=1.0, have_total=10)
    assert never.more_people is None and never.days is None
