"""Item-to-item recommenders: a person's items vote for their neighbours through a similarity matrix.

`similarity_[i, j]` is how much having bought item `i` speaks for item `j`; a person's score for `j`
is the sum over their items `i` of their (optionally decayed) weight times `similarity_[i, j]`. Each
row keeps its `k` strongest neighbours, so scoring one person touches a few thousand numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Self

import numpy as np
from implicit.nearest_neighbours import BM25Recommender as ImplicitBM25
from implicit.utils import ParameterWarning
from scipy import sparse

from shopkeeper.recommend._model import ArrayModel
from shopkeeper.recommend.base import FloatArray, History, Interactions
from shopkeeper.recommend.signals import (
    decayed_matrix,
    person_vector,
    top_k_per_row,
    window_popularity,
)

_CHUNK = 1024


def blockwise_top_k(
    left: sparse.csr_matrix,
    right: sparse.csr_matrix,
    k: int,
    adjust: Callable[[FloatArray, slice], FloatArray],
    *,
    self_votes: bool = False,
) -> sparse.csr_matrix:
    """`top_k_per_row(adjust(left @ right))`, computed a block of rows at a time to bound memory."""
    blocks = []
    for start in range(0, left.shape[0], _CHUNK):
        rows = slice(start, min(start + _CHUNK, left.shape[0]))
        dense = np.asarray((left[rows] @ right).todense(), dtype=np.float64)
        dense = adjust(dense, rows)
        if not self_votes:
            dense[np.arange(dense.shape[0]), np.arange(rows.start, rows.stop)] = 0.0
        blocks.append(top_k_per_row(dense, k))
    if not blocks:
        return sparse.csr_matrix((0, right.shape[1]))
    return sparse.csr_matrix(sparse.vstack(blocks))


class SimilarityRecommender(ArrayModel):
    """The scoring half shared by every item-to-item model; subclasses learn `similarity_`."""

    name = "similarity"
    _state = ("similarity_", "popularity_")
    half_life_days: float | None = None
    binary: bool = True

    def _similarity(self, interactions: Interactions) -> sparse.csr_matrix:
        raise NotImplementedError

    def fit(self, interactions: Interactions) -> Self:
        self.similarity_ = self._similarity(interactions)
        popularity = window_popularity(interactions, None)
        self.popularity_ = popularity / (popularity.max() + 1.0) if len(popularity) else popularity
        return self

    def score(self, history: History, now: float) -> FloatArray:
        self._check_fitted()
        n_items = self.similarity_.shape[1]
        items, values = person_vector(
            history, n_items, now, half_life_days=self.half_life_days, binary=self.binary
        )
        scores = 1e-9 * np.asarray(self.popularity_, dtype=np.float64)  # cold start: popularity order
        if len(items):
            scores += self.similarity_[items].T @ values
        return scores


class ItemKNNRecommender(SimilarityRecommender):
    """Item kNN with cosine similarity between item columns, shrunk by `shrink` (Sarwar et al.)."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0, binary: bool = True) -> None:
        self.k = k
        self.shrink = shrink
        self.binary = binary

    def _similarity(self, interactions: Interactions) -> sparse.csr_matrix:
        matrix = decayed_matrix(interactions, binary=self.binary)
        items = sparse.csr_matrix(matrix.T)
        norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())

        def cosine(dense: FloatArray, rows: slice) -> FloatArray:
            return dense / (np.outer(norms[rows], norms) + self.shrink + 1e-12)

        # A true cosine keeps each item's similarity 1 to itself: a bought item votes for itself.
        return blockwise_top_k(items, sparse.csr_matrix(matrix), self.k, cosine, self_votes=True)


class RP3betaRecommender(SimilarityRecommender):
    """RP3beta (Paudel et al. 2017): three-step random walk item -> user -> item, with transition
    probabilities raised to `alpha` and the target item's popularity divided out to the power `beta`."""

    name = "rp3beta"

    def __init__(self, k: int = 100, alpha: float = 1.0, beta: float = 0.5) -> None:
        self.k = k
        self.alpha = alpha
        self.beta = beta

    def _similarity(self, interactions: Interactions) -> sparse.csr_matrix:
        matrix = decayed_matrix(interactions, binary=True)
        user_item = _row_normalize(matrix).power(self.alpha)
        item_user = _row_normalize(sparse.csr_matrix(matrix.T)).power(self.alpha)
        degree = np.asarray(matrix.sum(axis=0)).ravel()
        penalty: FloatArray = np.power(np.maximum(degree, 1.0), -self.beta)

        def divide(dense: FloatArray, rows: slice) -> FloatArray:
            return dense * penalty[None, :]

        return blockwise_top_k(sparse.csr_matrix(item_user), sparse.csr_matrix(user_item), self.k, divide)


class CooccurrenceRecommender(SimilarityRecommender):
    """Time-decayed co-occurrence: people who bought `i` also bought `j`, recent pairs counting more.

    Each person-item presence is decayed by its age at the end of training (`half_life_days`), so
    the pairs are `C = X^T X` of the decayed matrix. Row `i` is divided by item `i`'s (decayed)
    buyers, giving P(j | i), and column `j` by its buyers to the power `beta` (0 keeps the raw
    conditional probability, which favours best sellers). The person's basket is decayed by
    `person_half_life_days` at scoring time.
    """

    name = "cooccurrence"

    def __init__(
        self,
        k: int = 200,
        half_life_days: float | None = 180.0,
        beta: float = 0.3,
        person_half_life_days: float | None = 60.0,
    ) -> None:
        self.k = k
        self.half_life_days = half_life_days
        self.beta = beta
        self.person_half_life_days = person_half_life_days

    def _similarity(self, interactions: Interactions) -> sparse.csr_matrix:
        matrix = decayed_matrix(interactions, self.half_life_days)
        matrix.data = np.minimum(matrix.data, 1.0)  # a presence, at most 1, fading with age
        degree = np.asarray(matrix.sum(axis=0)).ravel()
        safe: FloatArray = np.maximum(degree, 1e-9)
        penalty: FloatArray = np.power(safe, -self.beta)

        def conditional(dense: FloatArray, rows: slice) -> FloatArray:
            return dense / safe[rows, None] * penalty[None, :]

        return blockwise_top_k(sparse.csr_matrix(matrix.T), matrix, self.k, conditional)

    def score(self, history: History, now: float) -> FloatArray:
        self._check_fitted()
        items, values = person_vector(
            history, self.similarity_.shape[1], now, half_life_days=self.person_half_life_days
        )
        scores = 1e-9 * np.asarray(self.popularity_, dtype=np.float64)
        if len(items):
            scores += self.similarity_[items].T @ np.minimum(values, 1.0)
        return scores


class BM25Recommender(SimilarityRecommender):
    """Item kNN on BM25-weighted columns, learned by `implicit.nearest_neighbours.BM25Recommender`."""

    name = "bm25"

    def __init__(self, k: int = 100, k1: float = 1.2, b: float = 0.75, binary: bool = False) -> None:
        self.k = k
        self.k1 = k1
        self.b = b
        self.binary = binary

    def _similarity(self, interactions: Interactions) -> sparse.csr_matrix:
        model = ImplicitBM25(K=self.k, K1=self.k1, B=self.b, num_threads=1)
        with warnings.catch_warnings():
            # implicit's own BM25 weighting hands its kNN a COO matrix and then warns about it.
            warnings.filterwarnings("ignore", message="Method expects CSR input", category=ParameterWarning)
            model.fit(decayed_matrix(interactions).astype(np.float32), show_progress=False)
        # implicit keeps each item's self-similarity, so a bought item votes for itself; so do we.
        return sparse.csr_matrix(model.similarity, dtype=np.float64)


def _row_normalize(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sparse.csr_matrix(sparse.diags(inverse) @ matrix)
