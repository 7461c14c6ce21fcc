"""Off-policy evaluation: what a new policy would have earned, estimated from a log of another one.

The log has, per row i, the action a_i taken, its reward r_i and the logging policy's propensity
p_i = pi_0(a_i | x_i). The policy to evaluate gives target_distribution[i, a] = pi_e(a | x_i), and the
importance weight is w_i = pi_e(a_i | x_i) / p_i. With n rows:

- IPW (inverse propensity weighting): mean(w_i r_i). Unbiased when p_i > 0 wherever pi_e > 0.
- Self-normalized IPW: sum(w_i r_i) / sum(w_i). Slightly biased, much less variance when weights are large.
- Doubly robust: mean(sum_a pi_e(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i))), with a reward model q;
  unbiased if either the propensities or the model are right. The model here is `PerActionMeanModel`,
  the mean reward of each action (within a stratum such as the slot, when given).

Intervals are percentile bootstrap intervals over the log's rows, with the reward model held fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def importance_weights(actions: IntArray, logging_propensity: Array, target_distribution: Array) -> Array:
    """w_i = pi_e(a_i | x_i) / pi_0(a_i | x_i)."""
    if (logging_propensity <= 0).any():
        raise ValueError("logging propensities must be positive")
    rows = np.arange(actions.shape[0])
    return np.asarray(target_distribution[rows, actions] / logging_propensity, dtype=np.float64)


def ipw(rewards: Array, weights: Array) -> float:
    """The inverse-propensity-weighted estimate of the policy's mean reward."""
    return float(np.mean(weights * rewards))


def snipw(rewards: Array, weights: Array) -> float:
    """The self-normalized IPW estimate (0 when every weight is 0)."""
    total = float(weights.sum())
    return float((weights * rewards).sum() / total) if total > 0 else 0.0


def doubly_robust_terms(
    rewards: Array, actions: IntArray, weights: Array, target_distribution: Array, reward_estimates: Array
) -> Array:
    """Each row's doubly robust term; their mean is the estimate."""
    rows = np.arange(actions.shape[0])
    direct = (target_distribution * reward_estimates).sum(axis=1)
    return np.asarray(direct + weights * (rewards - reward_estimates[rows, actions]), dtype=np.float64)


def doubly_robust(
    rewards: Array, actions: IntArray, weights: Array, target_distribution: Array, reward_estimates: Array
) -> float:
    """The doubly robust estimate of the policy's mean reward."""
    return float(doubly_robust_terms(rewards, actions, weights, target_distribution, reward_estimates).mean())


class PerActionMeanModel:
    """A reward model: the mean reward of each action, within each stratum when strata are given.

    An action never seen in a stratum gets that stratum's mean reward.
    """

    def __init__(self, n_actions: int, n_strata: int = 1) -> None:
        self.n_actions = n_actions
        self.n_strata = n_strata

    def fit(self, actions: IntArray, rewards: Array, strata: IntArray | None = None) -> PerActionMeanModel:
        s = np.zeros_like(actions) if strata is None else strata
        cell = s * self.n_actions + actions
        size = self.n_strata * self.n_actions
        totals = np.bincount(cell, weights=rewards, minlength=size).reshape(self.n_strata, self.n_actions)
        counts = np.bincount(cell, minlength=size).reshape(self.n_strata, self.n_actions)
        stratum_mean = totals.sum(axis=1) / np.maximum(counts.sum(axis=1), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, totals / counts, stratum_mean[:, None])
        self.means_ = np.asarray(means, dtype=np.float64)
        return self

    def predict(self, strata: IntArray | None = None, n: int | None = None) -> Array:
        """The (rows, actions) matrix of estimated rewards."""
        if strata is None:
            if n is None:
                raise ValueError("give the strata or the number of rows")
            return np.repeat(self.means_[:1], n, axis=0)
        return self.means_[strata]


@dataclass(frozen=True)
class OffPolicyEstimate:
    """One estimator's estimate of the evaluated policy's mean reward, with a bootstrap interval."""

    estimator: str
    estimate: float
    ci_low: float
    ci_high: float


def evaluate_policy(
    rewards: npt.ArrayLike,
    actions: npt.ArrayLike,
    logging_propensity: npt.ArrayLike,
    target_distribution: npt.ArrayLike,
    reward_estimates: npt.ArrayLike | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> list[OffPolicyEstimate]:
    """IPW, self-normalized IPW and (with reward estimates) doubly robust, each with a bootstrap CI."""
    r = np.asarray(rewards, dtype=np.float64)
    a = np.asarray(actions, dtype=np.int64)
    p = np.asarray(logging_propensity, dtype=np.float64)
    pi = np.asarray(target_distribution, dtype=np.float64)
    if r.ndim != 1 or a.shape != r.shape or p.shape != r.shape or pi.shape[0] != r.shape[0] or r.size == 0:
        raise ValueError("rewards, actions and propensities need one value per row of target_distribution")
    w = importance_weights(a, p, pi)
    terms: dict[str, Array] = {"ipw": w * r}
    if reward_estimates is not None:
        q = np.asarray(reward_estimates, dtype=np.float64)
        terms["dr"] = doubly_robust_terms(r, a, w, pi, q)
    rng = np.random.default_rng(random_state)
    n = r.size
    samples: dict[str, list[Array]] = {name: [] for name in (*terms, "snipw")}
    chunk = max(1, 2_000_000 // n)  # bootstrap replicates per batch, to bound the memory used
    for start in range(0, n_bootstrap, chunk):
        draws = rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n))
        for name, values in terms.items():
            samples[name].append(values[draws].mean(axis=1))
        weighted, weights = terms["ipw"][draws].sum(axis=1), w[draws].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            samples["snipw"].append(np.where(weights > 0, weighted / weights, 0.0))
    tail = (1 - confidence) / 2
    point = {"ipw": ipw(r, w), "snipw": snipw(r, w)}
    if "dr" in terms:
        point["dr"] = float(terms["dr"].mean())
    results = []
    for name, estimate in point.items():
        replicates = np.concatenate(samples[name]) if samples[name] else np.zeros(0)
        low, high = (
            (float(np.quantile(replicates, tail)), float(np.quantile(replicates, 1 - tail)))
            if replicates.size
            else (float("nan"), float("nan"))
        )
        results.append(OffPolicyEstimate(name, estimate, low, high))
    return results
