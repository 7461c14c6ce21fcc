"""Thompson sampling: P(best) against Monte Carlo, propensities that match the choices, the floor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shopkeeper.experiments.bandit import (
    BetaBernoulliThompson,
    NormalRevenueThompson,
    probability_best,
    probability_best_normal,
)


def _monte_carlo(alpha: list[float], beta: list[float], draws: int = 400_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    samples = rng.beta(np.array(alpha)[:, None], np.array(beta)[:, None], size=(len(alpha), draws))
    return np.bincount(samples.argmax(axis=0), minlength=len(alpha)) / draws


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ([1, 1, 1], [1, 1, 1]),
        ([2, 5], [8, 5]),
        ([11, 13, 9, 1], [90, 88, 95, 1]),
        ([500, 520], [9500, 9480]),  # sharp, overlapping posteriors
        ([5000, 5100, 4000], [95000, 94900, 96000]),
        ([3, 300], [300, 3]),  # far apart
    ],
)
def test_probability_best_matches_monte_carlo(alpha: list[float], beta: list[float]) -> None:
    computed = probability_best(alpha, beta)
    assert computed.sum() == pytest.approx(1.0)
    assert computed == pytest.approx(_monte_carlo(alpha, beta), abs=0.004)


def test_symmetric_arms_are_equally_likely_best() -> None:
    assert probability_best([4, 4, 4, 4], [7, 7, 7, 7]) == pytest.approx([0.25] * 4, abs=1e-6)
    assert probability_best([2], [3]).tolist() == [1.0]


def test_the_floor_and_the_propensities() -> None:
    bandit = BetaBernoulliThompson(n_arms=3, floor=0.05, random_state=1)
    bandit.fit(
        [0] * 200 + [1] * 200 + [2] * 200, [1] * 20 + [0] * 180 + [1] * 60 + [0] * 140 + [1] * 10 + [0] * 190
    )
    propensities = bandit.propensities()
    assert propensities.sum() == pytest.approx(1.0)
    assert propensities.min() >= 0.05
    assert propensities.argmax() == 1
    assert propensities == pytest.approx(0.05 + 0.85 * bandit.probability_best())


def test_logged_propensities_match_how_often_each_arm_is_chosen() -> None:
    bandit = BetaBernoulliThompson(n_arms=3, floor=0.02, random_state=7)
    bandit.fit([0] * 50 + [1] * 50 + [2] * 50, [1] * 5 + [0] * 45 + [1] * 8 + [0] * 42 + [1] * 6 + [0] * 44)
    choices = [bandit.choose() for _ in range(20_000)]
    counts = np.bincount([c.arm for c in choices], minlength=3)
    expected = bandit.propensities()
    assert {c.propensity for c in choices if c.arm == 1} == {float(expected[1])}
    assert stats.chisquare(counts, f_exp=expected * len(choices)).pvalue > 1e-4


def test_learning_moves_traffic_to_the_best_arm_but_keeps_exploring() -> None:
    rates = np.array([0.05, 0.10, 0.20])
    rng = np.random.default_rng(3)
    bandit = BetaBernoulliThompson(n_arms=3, floor=0.01, random_state=4).fit([], [])
    chosen: list[int] = []
    for _ in range(30):  # the posterior is updated in batches of 100 choices, as a server would
        batch = [bandit.choose().arm for _ in range(100)]
        bandit.partial_fit(batch, (rng.random(100) < rates[batch]).astype(float))
        chosen += batch
    late = np.bincount(chosen[-1000:], minlength=3)
    assert late[2] > 800
    assert bandit.propensities().min() >= 0.01
    assert bandit.successes_.sum() + bandit.failures_.sum() == 3000


def test_bad_settings_and_rewards() -> None:
    with pytest.raises(ValueError, match="floor"):
        BetaBernoulliThompson(n_arms=4, floor=0.3).fit([], [])
    bandit = BetaBernoulliThompson(n_arms=2).fit([], [])
    with pytest.raises(ValueError, match="0 or 1"):
        bandit.partial_fit([0], [2.0])
    with pytest.raises(ValueError, match="indices"):
        bandit.partial_fit([2], [1.0])
    with pytest.raises(ValueError):
        probability_best([1, 0], [1, 1])


@pytest.mark.parametrize(
    ("means", "sds"),
    [
        ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ([1.0, 1.2], [0.5, 0.1]),
        ([10.0, 10.5, 9.0, 30.0], [1.0, 1.0, 2.0, 0.01]),
    ],
)
def test_normal_probability_best_matches_monte_carlo(means: list[float], sds: list[float]) -> None:
    computed = probability_best_normal(means, sds)
    rng = np.random.default_rng(1)
    draws = rng.normal(np.array(means)[:, None], np.array(sds)[:, None], size=(len(means), 400_000))
    sampled = np.bincount(draws.argmax(axis=0), minlength=len(means)) / draws.shape[1]
    assert computed == pytest.approx(sampled, abs=0.004)


def test_revenue_posterior_by_hand() -> None:
    # Arm 0: revenues 0, 0, 10, 10 (mean 5, squared deviations 100); arm 1: nothing yet.
    # Pooled: mean 5, variance 25. With prior_count 4: arm 0 mean (20 + 4 * 5) / 8 = 5,
    # variance (100 + 4 * 25) / 8 = 25, sd of the mean sqrt(25 / 8); arm 1 mean 5, sd sqrt(25 / 4).
    bandit = NormalRevenueThompson(n_arms=2, prior_count=4, random_state=0).fit([0, 0, 0, 0], [0, 0, 10, 10])
    mean, sd = bandit.posterior()
    assert mean == pytest.approx([5.0, 5.0])
    assert sd == pytest.approx([np.sqrt(25 / 8), np.sqrt(25 / 4)])
    assert bandit.probability_best() == pytest.approx([0.5, 0.5], abs=1e-6)


def test_revenue_bandit_finds_the_arm_that_earns_most_per_exposure() -> None:
    # Arm 1 converts less often but with bigger baskets: it earns the most per exposure (3.0 vs 2.0 and 1.5).
    conversion = np.array([0.04, 0.03, 0.05])
    basket = np.array([50.0, 100.0, 30.0])
    rng = np.random.default_rng(8)
    bandit = NormalRevenueThompson(n_arms=3, floor=0.02, random_state=9).fit([], [])
    chosen: list[int] = []
    for _ in range(40):
        batch = np.array([bandit.choose().arm for _ in range(250)])
        revenue = (rng.random(250) < conversion[batch]) * rng.exponential(basket[batch])
        bandit.partial_fit(batch, revenue)
        chosen += batch.tolist()
    assert np.bincount(chosen[-2500:], minlength=3).argmax() == 1
    assert bandit.propensities().min() >= 0.02
    with pytest.raises(ValueError, match="finite"):
        bandit.partial_fit([0], [float("nan")])
