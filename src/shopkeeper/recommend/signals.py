"""Shared building blocks of the recommenders: time decay, a person's item vector, windowed popularity."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy import sparse

from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions

DAY = 86_400.0
T = TypeVar("T", bound=np.generic)


def distinct(values: npt.NDArray[T]) -> npt.NDArray[T]:
    """`np.unique(values)` (sorted distinct values) by a sort and a comparison: numpy 2's hash-based
    `unique` is several times slower, both for a person's hundred items and for a whole log's pairs."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def decay(ages_seconds: FloatArray, half_life_days: float | None) -> FloatArray:
    """Exponential decay by age: 1 now, 0.5 after one half-life. `None` means no decay."""
    if half_life_days is None:
        return np.ones_like(ages_seconds, dtype=np.float64)
    return np.exp2(-np.maximum(ages_seconds, 0.0) / (half_life_days * DAY))


def person_vector(
    history: History, n_items: int, now: float, *, half_life_days: float | None = None, binary: bool = False
) -> tuple[IntArray, FloatArray]:
    """A person's purchased items and their (decayed) weights, as sparse (items, values), items unique."""
    bought = history.purchases()
    keep = (bought.item_idx >= 0) & (bought.item_idx < n_items)
    items = bought.item_idx[keep]
    if not len(items):
        return np.zeros(0, np.int64), np.zeros(0)
    values = bought.weights[keep] * decay(now - bought.times[keep], half_life_days)
    unique, inverse = np.unique(items, return_inverse=True)
    summed = np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.float64)
    if binary:
        summed = np.ones(len(unique))
    return unique.astype(np.int64), summed


def decayed_matrix(
    interactions: Interactions, half_life_days: float | None = None, *, binary: bool = False
) -> sparse.csr_matrix:
    """users x items purchase matrix, each event's weight decayed by its age at the end of training."""
    keep = interactions.kinds == 0
    values = interactions.weights[keep] * decay(interactions.end - interactions.times[keep], half_life_days)
    matrix = sparse.csr_matrix(
        (values, (interactions.user_idx[keep], interactions.item_idx[keep])),
        shape=(interactions.n_users, interactions.n_items),
        dtype=np.float64,
    )
    matrix.sum_duplicates()
    if binary:
        matrix.data = np.ones_like(matrix.data)
    return matrix


def window_popularity(
    interactions: Interactions, days: float | None, *, end: float | None = None
) -> FloatArray:
    """How many distinct people bought each item in the last `days` before `end` (all time if `None`)."""
    end = interactions.end if end is None else end
    keep = (interactions.kinds == 0) & (interactions.times <= end)
    if days is not None:
        keep &= interactions.times > end - days * DAY
    pairs = distinct(
        interactions.user_idx[keep].astype(np.int64) * interactions.n_items + interactions.item_idx[keep]
    )
    return np.bincount(pairs % max(interactions.n_items, 1), minlength=interactions.n_items).astype(
        np.float64
    )


def top_k_per_row(matrix: FloatArray, k: int) -> sparse.csr_matrix:
    """Keep the `k` largest positive entries of each row of a dense matrix, as CSR."""
    n_rows, n_cols = matrix.shape
    k = min(k, n_cols)
    if k <= 0:
        return sparse.csr_matrix((n_rows, n_cols))
    cols = np.argpartition(-matrix, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n_rows), k)
    values = np.take_along_axis(matrix, cols, axis=1).ravel()
    keep = values > 0
    out = sparse.csr_matrix((values[keep], (rows[keep], cols.ravel()[keep])), shape=(n_rows, n_cols))
    out.sort_indices()
    return out


def scale(scores: FloatArray) -> FloatArray:
    """Scores divided by their largest absolute value (zeros stay zeros), so blends compare like with like."""
    top = float(np.max(np.abs(scores))) if len(scores) else 0.0
    return scores / top if top > 0 else scores
