"""How much personas can be trusted: bootstrap stability, and how a run's groups match the previous run's.

Stability: `bootstraps` times (5 by default), customers are resampled with replacement (at most 20,000
drawn), the method is redone on the sample (k-means with the chosen number of clusters, 1 initialisation;
or the RFM rules with their quantiles re-taken) and applied to every customer. `stability_ari` is the
mean adjusted Rand index between those partitions and the run's own (k-means: its raw clusters, so the
split of small clusters into "everyone else" is not counted twice; RFM: its groups). A persona's
`stability` is Hennig's clusterwise Jaccard: the mean, over the bootstraps, of the best Jaccard overlap
between its members and any one group of the bootstrap partition; below 0.6 it is flagged unstable.

Matching: personas are matched one to one to the previous run's groups by member overlap (Jaccard over
everyone, solved by `scipy.optimize.linear_sum_assignment`), and only pairs with Jaccard >= 0.3 count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

BOOTSTRAP_SAMPLE = 20_000
STABLE_JACCARD = 0.6
MATCH_JACCARD = 0.3


class Move(NamedTuple):
    """`people` people who were in previous group `previous` and are now in group `current` (-1: everyone
    else), where the two groups are not matched to each other."""

    previous: int
    current: int
    people: int


@dataclass(frozen=True)
class Stability:
    """`ari`: mean adjusted Rand index (None without bootstraps); `groups`: each persona's clusterwise
    Jaccard (empty without bootstraps); `threshold`: below it a persona is unstable."""

    ari: float | None
    groups: list[float]
    threshold: float = STABLE_JACCARD


def _jaccard(one: IntArray, other: IntArray, k_one: int, k_other: int) -> FloatArray:
    """(k_one, k_other) Jaccard overlaps between the groups >= 0 of two labelings of the same rows."""
    both = (one >= 0) & (other >= 0)
    counts = np.bincount(one[both] * k_other + other[both], minlength=k_one * k_other)
    inter = counts.reshape(k_one, k_other).astype(np.float64)
    size_one = np.bincount(one[one >= 0], minlength=k_one)[:k_one].astype(np.float64)
    size_other = np.bincount(other[other >= 0], minlength=k_other)[:k_other].astype(np.float64)
    union = size_one[:, None] + size_other[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def bootstrap_stability(
    partition: IntArray,
    labels: IntArray,
    refit: Callable[[IntArray, int], IntArray],
    n: int,
    bootstraps: int,
    random_state: int,
) -> Stability:
    """The stability of `partition` (for the ARI) and of each persona of `labels` (clusterwise Jaccard),
    from `bootstraps` calls of `refit(rows, seed)`, each returning a partition of all `n` customers."""
    k = int(labels.max()) + 1 if len(labels) else 0
    if bootstraps == 0 or n < 2 or k == 0:
        return Stability(None, [])
    rng = np.random.default_rng(random_state + 1)
    aris, jaccards = [], []
    for b in range(bootstraps):
        rows = rng.choice(n, min(n, BOOTSTRAP_SAMPLE), replace=True)
        other = refit(rows, random_state + 1 + b)
        aris.append(adjusted_rand_score(partition, other))
        k_other = int(other.max()) + 1 if (other >= 0).any() else 1
        jaccards.append(_jaccard(labels, other, k, k_other).max(axis=1))
    return Stability(float(np.mean(aris)), [float(value) for value in np.mean(jaccards, axis=0)])


def match_previous(labels: IntArray, previous: IntArray, k: int) -> tuple[list[int | None], list[Move]]:
    """Each current persona's previous group (or None), and the moves between groups not matched to each
    other, largest first. A move counts a person whose previous group p >= 0 is not the match of their
    current group (everyone else, -1, matches nothing); people new to the previous run are not moves."""
    k_previous = int(previous.max()) + 1 if len(previous) and previous.max() >= 0 else 0
    matches: list[int | None] = [None] * k
    if k and k_previous:
        overlap = _jaccard(labels, previous, k, k_previous)
        rows, columns = linear_sum_assignment(-overlap)
        for row, column in zip(rows, columns, strict=True):
            if overlap[row, column] >= MATCH_JACCARD:
                matches[int(row)] = int(column)
    matched_of = np.array([-2 if m is None else m for m in matches] + [-2], dtype=np.int64)  # [-1] = -2
    moved = (previous >= 0) & (matched_of[labels] != previous)
    counts = Counter(zip(previous[moved].tolist(), labels[moved].tolist(), strict=True))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return matches, [Move(int(p), int(c), int(count)) for (p, c), count in ordered]
