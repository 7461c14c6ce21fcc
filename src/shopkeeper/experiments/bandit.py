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

Revenue per exposure is not a Bernoulli outcome. `NormalRevenueThompson` is the documented choice for it:
Thompson sampling on a normal approximation to the posterior of each arm's mean revenue per exposure,
N(mean, variance / n). Most exposures earn nothing and a few earn a lot, so revenue itself is far from
normal, but by the central limit theorem its mean is close to normal after a few hundred exposures. Each
arm is shrunk toward the pooled mean and variance of all arms by `prior_count` pseudo-exposures, so that
an arm with little data neither wins nor loses on noise. The same floor and propensities apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Array = npt.NDArray[np.float64]


def _integrate_best(grid: Array, log_cdf: Array, density: Array) -> Array:
    """P(arm i is highest) = integral of f_i * prod_{j != i} F_j, by the trapezoid rule on `grid`."""
    log_cdf = np.maximum(log_cdf, -1e4)  # log 0 made finite, so that "all but i" sums stay exact
    density = np.nan_to_num(density, nan=0.0, posinf=0.0)
    others = log_cdf.sum(axis=0)[None, :] - log_cdf
    result = np.trapezoid(density * np.exp(others), grid, axis=1)
    total = result.sum()
    return np.asarray(
        result / total if total > 0 else np.full(result.size, 1 / result.size), dtype=np.float64
    )


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
    pieces = [np.linspace(lo, hi, points_per_arm) for lo, hi in zip(lows, highs, strict=True)]
    grid = np.unique(np.concatenate([*pieces, [0.0, 1.0]]))
    return _integrate_best(
        grid,
        stats.beta.logcdf(grid[None, :], a[:, None], b[:, None]),
        stats.beta.pdf(grid[None, :], a[:, None], b[:, None]),
    )


def probability_best_normal(means: npt.ArrayLike, sds: npt.ArrayLike, points_per_arm: int = 512) -> Array:
    """P(arm i's N(mean_i, sd_i²) draw is the highest), for every arm; sums to 1."""
    m = np.asarray(means, dtype=np.float64)
    sd = np.asarray(sds, dtype=np.float64)
    if m.ndim != 1 or m.shape != sd.shape or m.size == 0 or (sd <= 0).any() or not np.isfinite(m).all():
        raise ValueError("means must be finite and sds positive, 1-d arrays of the same length")
    if m.size == 1:
        return np.ones(1)
    pieces = [np.linspace(mu - 9 * s, mu + 9 * s, points_per_arm) for mu, s in zip(m, sd, strict=True)]
    grid = np.unique(np.concatenate(pieces))
    return _integrate_best(
        grid,
        stats.norm.logcdf(grid[None, :], m[:, None], sd[:, None]),
        stats.norm.pdf(grid[None, :], m[:, None], sd[:, None]),
    )


@dataclass(frozen=True)
class Choice:
    """The arm chosen and the probability with which the policy chose it."""

    arm: int
    propensity: float


class _Thompson:
    """What both bandits share: the arms, the exploration floor, the propensities and the choice."""

    n_arms: int
    floor: float
    random_state: int | np.random.Generator | None
    rng_: np.random.Generator

    def _validate_floor(self) -> None:
        if self.n_arms < 1:
            raise ValueError("a bandit needs at least one arm")
        if not 0 <= self.floor * self.n_arms <= 1:
            raise ValueError(f"the exploration floor {self.floor} times {self.n_arms} arms must be at most 1")

    def _check_log(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], Array]:
        a = np.asarray(arms, dtype=np.int64)
        r = np.asarray(rewards, dtype=np.float64)
        if a.shape != r.shape or (a.size and (a.min() < 0 or a.max() >= self.n_arms)):
            raise ValueError("arms must be indices below n_arms, one per reward")
        if not np.isfinite(r).all():
            raise ValueError("rewards must be finite numbers")
        self._propensities: Array | None = None
        return a, r

    def probability_best(self) -> Array:
        raise NotImplementedError

    def _draw(self) -> Array:
        raise NotImplementedError

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
        if not hasattr(self, "rng_"):
            raise RuntimeError("call fit first (with no data for a fresh bandit)")
        if self.rng_.random() < self.n_arms * self.floor:
            arm = int(self.rng_.integers(self.n_arms))
        else:
            arm = int(np.argmax(self._draw()))
        return Choice(arm=arm, propensity=float(self.propensities()[arm]))


class BetaBernoulliThompson(_Thompson):
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

    def fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> BetaBernoulliThompson:
        """Learn the posteriors from logged (arm, 0/1 reward) pairs, replacing what was learned."""
        self._validate_floor()
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError("the Beta prior's parameters must be positive")
        self.successes_ = np.zeros(self.n_arms)
        self.failures_ = np.zeros(self.n_arms)
        self.rng_ = np.random.default_rng(self.random_state)
        return self.partial_fit(arms, rewards)

    def partial_fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> BetaBernoulliThompson:
        """Add more logged (arm, 0/1 reward) pairs."""
        if not hasattr(self, "successes_"):
            return self.fit(arms, rewards)
        a, r = self._check_log(arms, rewards)
        if ((r != 0) & (r != 1)).any():
            raise ValueError("Beta-Bernoulli rewards must be 0 or 1")
        self.successes_ += np.bincount(a, weights=r, minlength=self.n_arms)
        self.failures_ += np.bincount(a, weights=1 - r, minlength=self.n_arms)
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

    def _draw(self) -> Array:
        return self.rng_.beta(self.alpha_, self.beta_)


class NormalRevenueThompson(_Thompson):
    """Thompson sampling for revenue per exposure, on a normal approximation of each arm's mean.

    Arm k's posterior is N(mean_k, variance_k / (n_k + prior_count)), where mean_k and variance_k blend the
    arm's own exposures with `prior_count` pseudo-exposures at the mean and variance pooled over all arms.
    """

    def __init__(
        self,
        n_arms: int,
        floor: float = 0.01,
        prior_count: float = 10.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_arms = n_arms
        self.floor = floor
        self.prior_count = prior_count
        self.random_state = random_state

    def fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> NormalRevenueThompson:
        """Learn from logged (arm, revenue) pairs, replacing what was learned."""
        self._validate_floor()
        if self.prior_count <= 0:
            raise ValueError("prior_count must be positive")
        self.counts_ = np.zeros(self.n_arms)
        self.sums_ = np.zeros(self.n_arms)
        self.squares_ = np.zeros(self.n_arms)
        self.rng_ = np.random.default_rng(self.random_state)
        return self.partial_fit(arms, rewards)

    def partial_fit(self, arms: npt.ArrayLike, rewards: npt.ArrayLike) -> NormalRevenueThompson:
        """Add more logged (arm, revenue) pairs."""
        if not hasattr(self, "counts_"):
            return self.fit(arms, rewards)
        a, r = self._check_log(arms, rewards)
        self.counts_ += np.bincount(a, minlength=self.n_arms)
        self.sums_ += np.bincount(a, weights=r, minlength=self.n_arms)
        self.squares_ += np.bincount(a, weights=r * r, minlength=self.n_arms)
        return self

    def posterior(self) -> tuple[Array, Array]:
        """Each arm's posterior mean and standard deviation of its mean revenue per exposure."""
        total = self.counts_.sum()
        pooled_mean = self.sums_.sum() / total if total else 0.0
        pooled_variance = self.squares_.sum() / total - pooled_mean**2 if total else 0.0
        pooled_variance = max(pooled_variance, 1e-12)
        weight = self.counts_ + self.prior_count
        mean = (self.sums_ + self.prior_count * pooled_mean) / weight
        with np.errstate(invalid="ignore", divide="ignore"):
            own_mean = np.where(self.counts_ > 0, self.sums_ / np.maximum(self.counts_, 1), 0.0)
        own_squares = self.squares_ - self.counts_ * own_mean**2  # sum of squared deviations
        variance = (np.maximum(own_squares, 0.0) + self.prior_count * pooled_variance) / weight
        return mean, np.sqrt(variance / weight)

    def probability_best(self) -> Array:
        """Each arm's posterior probability of having the highest mean revenue per exposure."""
        mean, sd = self.posterior()
        return probability_best_normal(mean, sd)

    def _draw(self) -> Array:
        mean, sd = self.posterior()
        return self.rng_.normal(mean, sd)
