"""Item neighbours for explanations: "because you bought X" names the bought item most like this one.

Cosine similarity between items' purchase columns, keeping the `k` nearest of each item. Pure numpy/scipy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from shopkeeper.recommend.base import FloatArray, History, Interactions, load_arrays, save_arrays

BoolArray = npt.NDArray[np.bool_]


class ItemNeighbours:
    """The `k` most similar items of each item (cosine over who bought them)."""

    name: ClassVar[str] = "item_neighbours"

    def __init__(self, k: int = 20) -> None:
        self.k = k

    def fit(self, interactions: Interactions) -> Self:
        bought = interactions.matrix(kinds=(0,))
        bought.data[:] = 1.0
        norms = np.sqrt(np.asarray(bought.multiply(bought).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        scaled = bought @ sparse.diags(1.0 / norms)
        similarity = (scaled.T @ scaled).tocsr()
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        self.similarity_ = _keep_top_k(similarity, self.k)
        return self

    def score(self, history: History, now: float) -> FloatArray:
        """How similar each item is to what the person bought (a sum over their items)."""
        bought = np.unique(history.purchases().item_idx)
        if not len(bought):
            return np.zeros(self.similarity_.shape[0])
        return np.asarray(self.similarity_[bought].sum(axis=0)).ravel()

    def nearest_marked(self, item: int, marked: BoolArray) -> tuple[int, float] | None:
        """Which of the marked items (the person's, one flag per item) is most like `item`, and how much.
        The flags are made once for the up to `n` items a decision explains; each answer is a lookup."""
        return strongest_marked(self.similarity_, item, marked)

    def save(self, directory: Path) -> None:
        save_arrays(directory, self.name, {"k": self.k}, similarity=self.similarity_)

    @classmethod
    def load(cls, directory: Path) -> Self:
        params, arrays = load_arrays(directory)
        model = cls(k=int(params["k"]))
        model.similarity_ = arrays["similarity"]
        return model


def strongest_marked(matrix: sparse.csr_matrix, row: int, marked: BoolArray) -> tuple[int, float] | None:
    """The largest stored entry of `matrix[row]` whose column is marked, as (column, value); None if
    the row has none."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    if start == end:
        return None
    indices, data = matrix.indices[start:end], matrix.data[start:end]
    mask = marked[indices]
    if not mask.any():
        return None
    best = int(np.argmax(np.where(mask, data, -np.inf)))
    return int(indices[best]), float(data[best])


def _keep_top_k(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    rows, cols, vals = [], [], []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        if start == end:
            continue
        data = matrix.data[start:end]
        keep = np.argsort(-data)[:k]
        rows.append(np.full(len(keep), i))
        cols.append(matrix.indices[start:end][keep])
        vals.append(data[keep])
    if not rows:
        return sparse.csr_matrix(matrix.shape)
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )
