"""The default model: candidates from several recommenders, re-ranked by gradient-boosted trees.

Stage 1 gathers candidates for a person: everything they bought, plus the top items of EASE,
time-decayed co-occurrence and ALS (fold-in) for their history, plus the week's best sellers.
Stage 2 scores each candidate with trees over per-(person, item) features (`features.FEATURES`: how
often and how recently they bought it, their own re-order rhythm, the models' scores, item trends,
repeat rates, days since the item last sold...).

The trees learn from the training data alone: `fit` replays the last `windows` periods of
`window_days` inside it (features from before each period, labels = what people bought in it),
then refits the candidate models on everything. No hyperparameter of this model is tuned on a test
window. Scoring one person is a few sparse products and one pass down the trees: well under a ms.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from shopkeeper.recommend._model import NotFittedError
from shopkeeper.recommend.als import ALSRecommender
from shopkeeper.recommend.base import (
    FloatArray,
    History,
    IntArray,
    Interactions,
    Recommender,
    load_arrays,
    save_arrays,
)
from shopkeeper.recommend.baselines import PopularityRecommender, RepeatRecommender
from shopkeeper.recommend.blend import BlendRecommender
from shopkeeper.recommend.ease import DEFAULT_MAX_ITEMS, EASERecommender
from shopkeeper.recommend.features import ItemStats, PersonItems, person_item_features
from shopkeeper.recommend.neighbors import CooccurrenceRecommender
from shopkeeper.recommend.signals import DAY
from shopkeeper.recommend.trees import TreeEnsemble, from_histogram_boosting


class RerankRecommender:
    """Two-stage: candidates (own history, EASE, co-occurrence, ALS, trending), then learned re-ranking."""

    name: ClassVar[str] = "rerank"

    def __init__(
        self,
        windows: int = 2,
        window_days: float = 30.0,
        model_candidates: int = 50,
        trending_candidates: int = 20,
        ease_l2: float = 500.0,
        ease_max_items: int = DEFAULT_MAX_ITEMS,
        als_factors: int = 64,
        als_regularization: float = 5.0,
        als_alpha: float = 2.0,
        trees: int = 80,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        negative_share: float = 0.25,
        random_state: int = 0,
    ) -> None:
        self.windows = windows
        self.window_days = window_days
        self.model_candidates = model_candidates
        self.trending_candidates = trending_candidates
        self.ease_l2 = ease_l2
        self.ease_max_items = ease_max_items
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.trees = trees
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.negative_share = negative_share
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    # -- fitting -----------------------------------------------------------------------------
    def _fit_parts(self, interactions: Interactions) -> None:
        self.ease_ = EASERecommender(self.ease_l2, self.ease_max_items).fit(interactions)
        self.cooccurrence_ = CooccurrenceRecommender().fit(interactions)
        self.als_ = ALSRecommender(
            self.als_factors, self.als_regularization, self.als_alpha, random_state=self.random_state
        ).fit(interactions)
        self.stats_ = ItemStats.of(interactions)

    def fit(self, interactions: Interactions) -> Self:
        rng = np.random.default_rng(self.random_state)
        blocks: list[FloatArray] = []
        labels: list[FloatArray] = []
        end = interactions.end
        for window in range(self.windows):
            label_end = end - window * self.window_days * DAY
            label_start = label_end - self.window_days * DAY
            before = _subset(interactions, interactions.times < label_start)
            during = (interactions.times >= label_start) & (interactions.times < label_end + 1.0)
            during &= interactions.kinds == 0
            if not len(before.times) or not during.any():
                continue
            self._fit_parts(before)
            wanted = _grouped(interactions.user_idx[during], interactions.item_idx[during])
            starts = np.searchsorted(before.user_idx, np.arange(before.n_users + 1))
            for user, items in wanted.items():
                if starts[user] == starts[user + 1]:
                    continue
                history = _history(before, starts, user)
                candidates, features = self._features(history, label_start)
                label = np.isin(candidates, items).astype(np.float64)
                keep = (label > 0) | (rng.random(len(label)) < self.negative_share)
                blocks.append(features[keep])
                labels.append(label[keep])
        self._fit_parts(interactions)
        if not blocks or len({float(v) for y in labels for v in np.unique(y)}) < 2:
            raise NotFittedError("rerank needs purchases in at least one window of the training data")
        booster = HistGradientBoostingClassifier(
            max_iter=self.trees,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            min_samples_leaf=50,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(np.vstack(blocks), np.concatenate(labels))
        self.trees_ = from_histogram_boosting(booster)
        buyers = self.stats_.buyers_30 + self.stats_.buyers_all / (self.stats_.buyers_all.max() + 1.0)
        self.popularity_ = buyers / (buyers.max() + 1.0) if len(buyers) else buyers
        return self

    # -- scoring -----------------------------------------------------------------------------
    def _features(self, history: History, now: float) -> tuple[IntArray, FloatArray]:
        n_items = len(self.stats_.buyers_all)
        person = PersonItems.of(history, n_items)
        ease = self.ease_.score(history, now)
        cooccurrence = self.cooccurrence_.score(history, now)
        als = self.als_.score(history, now)
        k = self.model_candidates
        pools = [person.items]
        if len(person.items):
            pools += [_best(ease, k), _best(cooccurrence, k), _best(als, k)]
        pools.append(_best(self.stats_.buyers_7 + 1e-3 * self.stats_.buyers_30, self.trending_candidates))
        if not len(person.items):
            pools.append(_best(self.stats_.buyers_30 + 1e-3 * self.stats_.buyers_all, k))
        candidates = np.unique(np.concatenate(pools)).astype(np.int64)
        features = person_item_features(
            candidates, person, history, now, self.stats_, ease, cooccurrence, als
        )
        return candidates, features

    def score(self, history: History, now: float) -> FloatArray:
        if not hasattr(self, "trees_"):
            raise NotFittedError("rerank is not fitted: call fit() or load() first")
        candidates, features = self._features(history, now)
        raw = self.trees_.predict(features)
        # Everything outside the candidates ranks below them, in popularity order.
        scores = np.asarray(self.popularity_, dtype=np.float64) + (float(raw.min()) - 2.0)
        scores[candidates] = raw
        return scores

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if not hasattr(self, "trees_"):
            raise NotFittedError("rerank is not fitted: nothing to save")
        self.ease_.save(directory / "ease")
        self.cooccurrence_.save(directory / "cooccurrence")
        self.als_.save(directory / "als")
        save_arrays(
            directory,
            self.name,
            self.get_params(),
            popularity_=self.popularity_,
            **self.trees_.arrays("trees_"),
            **self.stats_.arrays(),
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        params, arrays = load_arrays(directory)
        model = cls(**params)
        model.ease_ = EASERecommender.load(directory / "ease")
        model.cooccurrence_ = CooccurrenceRecommender.load(directory / "cooccurrence")
        model.als_ = ALSRecommender.load(directory / "als")
        model.stats_ = ItemStats.from_arrays(arrays)
        model.trees_ = TreeEnsemble.from_arrays(arrays, "trees_")
        model.popularity_ = arrays["popularity_"]
        return model


def make_default(**params: Any) -> RerankRecommender:
    """The default model, unfitted, with the defaults that serving and `shopkeeper train` use."""
    return RerankRecommender(**params)


def train_default(interactions: Interactions, **params: Any) -> Recommender:
    """Fit the default model on everything known: the one call `shopkeeper train` needs.

    A shop too young for the re-ranker (no purchases in its replayed windows, or no repeat of any
    kind to learn from) gets the simple blend instead: repeat + 0.2·EASE + 0.3·popularity.
    """
    try:
        return make_default(**params).fit(interactions)
    except NotFittedError:
        parts: list[Recommender] = [RepeatRecommender(), EASERecommender(), PopularityRecommender()]
        return BlendRecommender(parts, [1.0, 0.2, 0.3]).fit(interactions)


def _subset(interactions: Interactions, keep: Any) -> Interactions:
    """The same index space (all users and items), fewer events, sorted by person then time."""
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((interactions.times[rows], interactions.user_idx[rows]))]
    return Interactions(
        user_idx=interactions.user_idx[rows],
        item_idx=interactions.item_idx[rows],
        times=interactions.times[rows],
        weights=interactions.weights[rows],
        kinds=interactions.kinds[rows],
        user_ids=interactions.user_ids,
        item_ids=interactions.item_ids,
    )


def _grouped(users: IntArray, items: IntArray) -> dict[int, IntArray]:
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    unique, starts = np.unique(users, return_index=True)
    bounds = [*starts.tolist(), len(users)]
    return {int(u): np.unique(items[bounds[k] : bounds[k + 1]]) for k, u in enumerate(unique)}


def _history(interactions: Interactions, starts: IntArray, user: int) -> History:
    rows = slice(int(starts[user]), int(starts[user + 1]))
    return History(
        interactions.item_idx[rows],
        interactions.times[rows],
        interactions.weights[rows],
        interactions.kinds[rows],
    )


def _best(scores: FloatArray, k: int) -> IntArray:
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    return np.argpartition(-scores, k - 1)[:k].astype(np.int64)
