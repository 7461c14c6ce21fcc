"""The simple anchors: popularity over a recent window, and repeat purchase with recency decay."""

from __future__ import annotations

from typing import Self

import numpy as np

from shopkeeper.recommend._model import ArrayModel
from shopkeeper.recommend.base import FloatArray, History, Interactions
from shopkeeper.recommend.signals import person_vector, window_popularity


class PopularityRecommender(ArrayModel):
    """The non-personal baseline: how many distinct people bought each item in the last `window_days`.

    Items not bought in the window keep their all-time popularity as a tie-break below the window's.
    """

    name = "popularity"
    _state = ("popularity_",)

    def __init__(self, window_days: float | None = 30.0) -> None:
        self.window_days = window_days

    def fit(self, interactions: Interactions) -> Self:
        recent = window_popularity(interactions, self.window_days)
        overall = window_popularity(interactions, None)
        # Recent counts first; all-time counts only order what the window leaves tied.
        self.popularity_ = recent + overall / (overall.max() + 1.0) if len(overall) else recent
        return self

    def score(self, history: History, now: float) -> FloatArray:
        self._check_fitted()
        return np.array(self.popularity_, dtype=np.float64)


class RepeatRecommender(ArrayModel):
    """Buy it again: the person's own purchases, each invoice decayed by its age (`half_life_days`).

    Every item the person bought ranks above every item they did not; ties (and the never-bought
    items) are broken by popularity over the last `window_days`, never by item index.
    """

    name = "repeat"
    _state = ("popularity_",)

    def __init__(self, half_life_days: float | None = 60.0, window_days: float | None = 30.0) -> None:
        self.half_life_days = half_life_days
        self.window_days = window_days

    def fit(self, interactions: Interactions) -> Self:
        popularity = PopularityRecommender(self.window_days).fit(interactions).popularity_
        self.popularity_ = popularity / (popularity.max() + 1.0) if len(popularity) else popularity
        return self

    def score(self, history: History, now: float) -> FloatArray:
        self._check_fitted()
        scores = np.array(self.popularity_, dtype=np.float64)  # in [0, 1)
        items, values = person_vector(history, len(scores), now, half_life_days=self.half_life_days)
        # Bought items sit above 1; popularity only breaks exact ties among them.
        scores[items] = 1.0 + values + 1e-9 * scores[items]
        return scores
