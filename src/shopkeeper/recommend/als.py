"""Implicit-feedback matrix factorization (Hu, Koren, Volinsky 2008) learned by `implicit`'s CPU ALS.

Only the item factors are kept. A person's factors are solved at scoring time from the history
passed in (the exact least-squares "fold-in" that `implicit` does with `recalculate_user=True`), so a
purchase made a second ago moves their recommendations without a refit.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from shopkeeper.recommend._model import ArrayModel
from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions
from shopkeeper.recommend.signals import decayed_matrix, person_vector, window_popularity


class ALSRecommender(ArrayModel):
    """ALS with confidence `alpha * invoices` (`implicit` style) and L2 penalty `regularization`."""

    name = "als"
    _state = ("item_factors_", "gram_", "popularity_")

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, interactions: Interactions) -> Self:
        matrix = decayed_matrix(interactions).astype(np.float32)
        # One thread: on small shared machines implicit's second thread costs more than it saves
        # (measured on 2 busy cores: 1.5 s alone vs 2.0 s with two). implicit warns when BLAS runs
        # its own threads beside its own; keep BLAS single-threaded too.
        threads = 1
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=threads,
                random_state=self.random_state,
            )
            model.fit(matrix, show_progress=False)
        item_factors = np.asarray(model.item_factors, dtype=np.float64)
        self.item_factors_ = item_factors
        self.gram_ = item_factors.T @ item_factors
        popularity = window_popularity(interactions, None)
        self.popularity_ = popularity / (popularity.max() + 1.0) if len(popularity) else popularity
        return self

    def person_factors(self, history: History, now: float) -> FloatArray:
        """The person's factors, solved from their history (see `fold_in`)."""
        self._check_fitted()
        items, counts = person_vector(history, len(self.item_factors_), now)
        return self.fold_in(items, counts)

    def fold_in(self, items: IntArray, counts: FloatArray) -> FloatArray:
        """Solve (YᵀY + Yᵀ(C - I)Y + λI) x = YᵀC p for a person's factors, exactly, from their
        distinct `items` and invoices per item (`counts`)."""
        factors = self.item_factors_
        if not len(items):
            return np.zeros(factors.shape[1])
        confidence = self.alpha * counts
        own = factors[items]
        system = self.gram_ + own.T @ ((confidence - 1.0)[:, None] * own)
        system[np.diag_indices_from(system)] += self.regularization
        solved: FloatArray = np.asarray(np.linalg.solve(system, own.T @ confidence), dtype=np.float64)
        return solved

    def score(self, history: History, now: float) -> FloatArray:
        person = self.person_factors(history, now)
        return 1e-9 * np.asarray(self.popularity_, dtype=np.float64) + self.item_factors_ @ person
