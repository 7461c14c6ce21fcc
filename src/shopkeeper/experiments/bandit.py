"""Beta-Bernoulli Thompson sampling with a floor on exploration, logging each choice's propensity.

Each arm's click or conversion rate has a Beta(prior_alpha + successes, prior_beta + failures) posterior.
A choice is, with probability `n_arms * floor`, a uniformly random arm, and otherwise the arm whose
posterior draw is highest. So arm i is chosen with probability

    propensity_i = floor + (1 - n_arms * floor) * P(arm i has the highest draw)

which is at least `floor`: every arm keeps being explored, and the log can be evaluated off-policy
(`shopkeeper.experiments.ope`) because no propensity is zero. P(highest draw) is computed, not
sampled: the integral of f_i(x) * prod_{j != i} F_j(x) over [0, 1] by the trapezoid rule on a grid
that is dense where each posterior has its mass. The same number is the "probability of being best"
that reports show.

Revenue is not a Bernoulli outcome; a revenue bandit (e.g. Thompson sampling on a normal posterior of
revenue per exposure) is not part of this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Array = npt.NDArray[np.float64]


def probability_best(alpha: npt.ArrayLike, beta: npt.ArrayLike, points_per_arm: int = 512) -> Array:
    """P(arm i's Beta(alpha_i, beta_i) draw is the highest), for every arm; sums to 1."""
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0 or (a <= 0).any() or (b <= 0).any():
        raise ValueError("alpha and beta must be positive 1-d arrays of the same length")
    if a.size == 1:
        return np.ones(1)
    lows = stats.beta.ppf(1e-12, a, b)
    highs = stats.beta.isf(1e-12, a, b)
    grid = np.unique(
        np.concatenate(
            [np.linspace(lo, hi, points_per_arm) for lo, hi in zip(lows, highs, strict=True)] + [[0.0, 1.0]]
        )
    )
    # log F_j on the grid, with log 0 = -inf made a large finite number so that "all but i" sums are exact
    log_cdf = np.maximum(stats.beta.logcdf(grid[None, :], a[:, None], b[:, None]), -1e4)  # (arms, points)
    density = np.nan_to_num(stats.beta.pdf(grid[None, :], a[:, None], b[:, None]), nan=0.0, posinf=0.0)
    others = log_cdf.sum(axis=0)[None, :] - log_cdf
    integrand = density * np.exp(others)
    result = np.trapezoid(integrand, grid, axis=1)
    total = result.sum()
    return result / total if total > 0 else np.full(a.size, 1 / a.size)


@dataclass(frozen=True)
class Choice:
    """The arm chosen and the probability with which the policy chose it."""

    arm: int
    propensity: float


class BetaBernoulliThompson:
    """Thompson sampling for 0/1 rewards (clicks, conversions) with at least `floor` chance per arm."""

    def __init__(
        self,
        n_arms: int,
        floor: float = 0.01,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_arms = n_arms
        self.floor = floor
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.random_state = random_state

    def _validate(self) -> None:
        if self.n_arms < 1:
            raise ValueError("a bandit needs at least one arm")
        if not 0 <= self.floor * self.n_arms <= 1:
            raise ValueError(f"the exploration floor {self.floor} times {self.n_arms} arms must be at most 1")
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError("the Beta prior's parameters must be positive")

    def fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> BetaBernoulliThompson:
        """Learn the posteriors from logged (arm, 0/1 reward) pairs, replacing what was learned."""
        self._validate()
        self.successes_ = np.zeros(self.n_arms)
        self.failures_ = np.zeros(self.n_arms)
        self.rng_ = np.random.default_rng(self.random_state)
        return self.partial_fit(arms, rewards)

    def partial_fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> BetaBernoulliThompson:
        """Add more logged (arm, 0/1 reward) pairs."""
        if not hasattr(self, "successes_"):
            return self.fit(arms, rewards)
        a = np.asarray(arms, dtype=np.int64)
        r = np.asarray(rewards, dtype=np.float64)
        if a.shape != r.shape or (a.size and (a.min() < 0 or a.max() >= self.n_arms)):
            raise ValueError("arms must be indices below n_arms, one per reward")
        if ((r != 0) & (r != 1)).any():
            raise ValueError("Beta-Bernoulli rewards must be 0 or 1")
        self.successes_ += np.bincount(a, weights=r, minlength=self.n_arms)
        self.failures_ += np.bincount(a, weights=1 - r, minlength=self.n_arms)
        self._propensities: Array | None = None
        return self

    @property
    def alpha_(self) -> Array:
        return self.prior_alpha + self.successes_

    @property
    def beta_(self) -> Array:
        return self.prior_beta + self.failures_

    def probability_best(self) -> Array:
        """Each arm's posterior probability of having the highest rate."""
        return probability_best(self.alpha_, self.beta_)

    def propensities(self) -> Array:
        """Each arm's probability of being chosen by `choose` (the floor included).

        Computed once per state of the posteriors: choices between two updates reuse it.
        """
        if getattr(self, "_propensities", None) is None:
            self._propensities = self.floor + (1 - self.n_arms * self.floor) * self.probability_best()
        assert self._propensities is not None
        return self._propensities.copy()

    def choose(self) -> Choice:
        """Choose an arm; log it with its propensity."""
        if not hasattr(self, "successes_"):
            self.fit(np.zeros(0, dtype=np.int64), np.zeros(0))
        if self.rng_.random() < self.n_arms * self.floor:
            arm = int(self.rng_.integers(self.n_arms))
        else:
            arm = int(np.argmax(self.rng_.beta(self.alpha_, self.beta_)))
        return Choice(arm=arm, propensity=float(self.propensities()[arm]))
