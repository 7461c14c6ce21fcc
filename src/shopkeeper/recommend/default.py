"""The default model: candidates from several recommenders, re-ranked by gradient-boosted trees.

Stage 1 gathers candidates for a person: their `own_candidates` strongest own items (decayed invoice
count), the top `model_candidates` of EASE and time-decayed co-occurrence (and of ALS fold-in, when
`als_factors` > 0) for their `history_items` most recent items, the top `transition_candidates` of
next-order transitions from their last `transition_orders` orders (`transitions.Transitions`), and
the week's best sellers: about 130 items for a typical person.
Stage 2 scores each candidate with trees over per-(person, item) features (`features.FEATURES`: how
often and how recently they bought it, their own re-order rhythm and how due the item is, the
models' scores and ranks, item trends and repeat rates...).

The trees learn from the training data alone: `fit` replays `windows` label periods of `window_days`,
each `stride_days` apart and ending at the end of the data (features from before each period,
labels = what people bought in it; the candidate models are refitted every `parts_every` windows on
the data before it), then refits the candidate models on everything. These settings were chosen on
validation windows before 2011-08-01 of the Online Retail file, never on a test window. ALS is off by
default: on those windows it changed NDCG@10 by less than the noise, and cost a quarter of the
training time and 0.3 ms per score. EASE here covers the 2,500 most bought items (`ease_max_items`;
the rest get an EASE score of 0 and reach the candidates through co-occurrence or the person's own
history): EASE is fitted three times per training and its cost grows with the cube of the items,
and the cap changed validation NDCG@10 by less than the noise.

The trees' settings come from three validation folds (test months May, June and July 2011, each
model fitted on the data before its month; means over three random seeds): 40 trees score NDCG@10
0.370 (`all`) / 0.142 (`new`) against 0.367 / 0.142 for 80, and fit 4 s faster. Tried there and
left out, each within the noise or worse: more label windows (8-16, a week apart: better on May,
worse by 0.005-0.007 on July, and slower), per-person sample weights, LambdaRank (lightgbm), all
negatives or a tenth, shallower or more regularised trees, one model for owned and one for new items,
more or fewer model candidates, and extra features (orders since the item, its share of the last
five orders, the person's repeat share, scores from the last order alone, the item's recent re-buy
share, what the 20-50 most similar people bought lately).

The next-order transition signal (score, rank and share of the best over the candidates; the item's
and the person's own "re-bought in the next order" rates; plus its 40 best targets as candidates,
column penalty beta 0.6) was chosen on folds May-August 2011 (three seeds): NDCG@10 0.380 / 0.147
against 0.380 / 0.141 without it (`new` better on all four months, `all` unchanged); beta 0.9 with
20 candidates scored 0.382 / 0.144. Its fit adds about 0.2 s per candidate-model refit.

The trees are `bags` (3) ensembles, each learned from every positive row and its own random
`negative_share` of the negatives, averaged into one (`TreeEnsemble.average`). On May-July, two
seeds: NDCG@10 0.372 / 0.142 against 0.369 / 0.140 for one ensemble (with transitions, May-August,
means over seeds: 0.384 / 0.148 against 0.380 / 0.147); it costs about 3 s of fitting and 0.2 ms per
score.

September 2011, the goals table's test month, was never used to choose anything. There the model
scores 0.370 / 0.108, and `benchmarks/ceiling.py` shows how little is left for these features: trees
trained on September's own purchases (cross-fitted over its people) reach 0.378-0.381 on `all`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

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
from shopkeeper.recommend.ease import EASERecommender
from shopkeeper.recommend.features import Baskets, ItemStats, PersonItems, person_item_features
from shopkeeper.recommend.neighbors import CooccurrenceRecommender
from shopkeeper.recommend.signals import DAY, decay, distinct
from shopkeeper.recommend.transitions import Transitions, rebuy_columns
from shopkeeper.recommend.trees import TreeEnsemble, from_histogram_boosting

BoolArray = npt.NDArray[np.bool_]


class RerankRecommender:
    """Two-stage: candidates (own history, EASE, co-occurrence, optional ALS, trending), then learned
    re-ranking."""

    name: ClassVar[str] = "rerank"

    def __init__(
        self,
        windows: int = 4,
        window_days: float = 30.0,
        stride_days: float = 15.0,
        parts_every: int = 2,
        max_users_per_window: int = 100_000,
        own_candidates: int = 100,
        model_candidates: int = 50,
        trending_candidates: int = 20,
        transition_candidates: int = 40,
        transition_horizon: int = 2,
        transition_gap_days: float = 120.0,
        transition_beta: float = 0.6,
        transition_orders: int = 2,
        history_items: int = 100,
        ease_l2: float = 500.0,
        ease_max_items: int = 2_500,
        als_factors: int = 0,
        als_regularization: float = 5.0,
        als_alpha: float = 2.0,
        trees: int = 40,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        negative_share: float = 0.25,
        bags: int = 3,
        random_state: int = 0,
    ) -> None:
        self.windows = windows
        self.window_days = window_days
        self.stride_days = stride_days
        self.parts_every = parts_every
        self.max_users_per_window = max_users_per_window
        self.own_candidates = own_candidates
        self.model_candidates = model_candidates
        self.trending_candidates = trending_candidates
        self.transition_candidates = transition_candidates
        self.transition_horizon = transition_horizon
        self.transition_gap_days = transition_gap_days
        self.transition_beta = transition_beta
        self.transition_orders = transition_orders
        self.history_items = history_items
        self.ease_l2 = ease_l2
        self.ease_max_items = ease_max_items
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.trees = trees
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.negative_share = negative_share
        self.bags = bags
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    # -- fitting -----------------------------------------------------------------------------
    def _fit_parts(self, interactions: Interactions) -> None:
        self.ease_ = EASERecommender(self.ease_l2, self.ease_max_items).fit(interactions)
        self.cooccurrence_ = CooccurrenceRecommender().fit(interactions)
        self.transitions_ = self._transitions().fit(interactions)
        self.als_ = ALSRecommender(
            max(self.als_factors, 1), self.als_regularization, self.als_alpha, random_state=self.random_state
        )
        if self.als_factors > 0:
            self.als_.fit(interactions)
        self.stats_ = ItemStats.of(interactions)
        self._prepare()

    def _transitions(self) -> Transitions:
        return Transitions(
            horizon=self.transition_horizon,
            max_gap_days=self.transition_gap_days,
            beta=self.transition_beta,
            last_orders=self.transition_orders,
        )

    def _prepare(self) -> None:
        """Arrays derived from the fitted parts that every score needs (not saved: cheap to rebuild)."""
        n_items = len(self.stats_.buyers_all)
        self.n_items_ = n_items
        ease_position = np.full(n_items, -1, np.int64)
        ease_position[self.ease_.items_] = np.arange(len(self.ease_.items_))
        self.ease_position_ = ease_position
        self.ease_full_ = len(self.ease_.items_) == n_items
        self.trending_ = _best(self.stats_.buyers_7 + 1e-3 * self.stats_.buyers_30, self.trending_candidates)
        self.popular_ = _best(self.stats_.buyers_30 + 1e-3 * self.stats_.buyers_all, self.model_candidates)

    def _windows(self, interactions: Interactions) -> Iterator[tuple[float, Interactions, BoolArray]]:
        """(label start, data before it, mask of the purchases in the label window), oldest first."""
        end = interactions.end
        for window in reversed(range(self.windows)):
            label_end = end - window * self.stride_days * DAY
            label_start = label_end - self.window_days * DAY
            before = _subset(interactions, interactions.times < label_start)
            during = (interactions.times >= label_start) & (interactions.times < label_end + 1.0)
            during &= interactions.kinds == 0
            if len(before.times) and during.any():
                yield label_start, before, during

    def training_rows(self, interactions: Interactions) -> tuple[FloatArray, FloatArray]:
        """The trees' training data, replayed from `interactions`: one row of `FEATURES` per candidate
        of each person who bought in a label window, and its 0/1 label. Leaves the candidate models
        fitted on the last window's data."""
        rng = np.random.default_rng(self.random_state)
        blocks: list[FloatArray] = []
        labels: list[FloatArray] = []
        for number, (label_start, before, during) in enumerate(self._windows(interactions)):
            if number % max(self.parts_every, 1) == 0:
                self._fit_parts(before)
            else:
                self.stats_ = ItemStats.of(before)
                self._prepare()
            wanted = _grouped(interactions.user_idx[during], interactions.item_idx[during])
            starts = np.searchsorted(before.user_idx, np.arange(before.n_users + 1))
            users = [u for u in wanted if starts[u] < starts[u + 1]]
            if len(users) > self.max_users_per_window:
                users = sorted(rng.choice(users, self.max_users_per_window, replace=False).tolist())
            for user in users:
                candidates, features = self.candidate_features(_history(before, starts, user), label_start)
                blocks.append(features)
                labels.append(np.isin(candidates, wanted[user]).astype(np.float64))
        if not blocks or len({float(v) for y in labels for v in np.unique(y)}) < 2:
            raise NotFittedError("rerank needs purchases in at least one window of the training data")
        return np.vstack(blocks), np.concatenate(labels)

    def fit(self, interactions: Interactions) -> Self:
        features, labels = self.training_rows(interactions)
        self._fit_parts(interactions)
        self.trees_ = self.fit_trees(features, labels)
        buyers = self.stats_.buyers_30 + self.stats_.buyers_all / (self.stats_.buyers_all.max() + 1.0)
        self.popularity_ = buyers / (buyers.max() + 1.0) if len(buyers) else buyers
        return self

    def fit_trees(self, features: FloatArray, labels: FloatArray) -> TreeEnsemble:
        """The re-ranker's trees, with this model's settings, learned from rows of `FEATURES` and 0/1
        labels (bought in the label window or not): `bags` ensembles, each from every positive row and
        its own random `negative_share` of the negatives, averaged."""
        rng = np.random.default_rng(self.random_state)
        ensembles = []
        # One OpenMP thread: on two shared cores, scikit-learn's threads spin at their barriers and
        # train ten times slower than one thread alone (2 s for ~150k rows).
        with threadpool_limits(1, "openmp"):
            for bag in range(max(self.bags, 1)):
                keep = (labels > 0) | (rng.random(len(labels)) < self.negative_share)
                booster = HistGradientBoostingClassifier(
                    max_iter=self.trees,
                    max_depth=self.max_depth,
                    learning_rate=self.learning_rate,
                    min_samples_leaf=50,
                    l2_regularization=1.0,
                    early_stopping=False,
                    random_state=self.random_state + bag,
                ).fit(features[keep], labels[keep])
                ensembles.append(from_histogram_boosting(booster))
        return TreeEnsemble.average(ensembles)

    # -- scoring -----------------------------------------------------------------------------
    def _model_scores(self, person: PersonItems, now: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """EASE, co-occurrence and ALS scores over the whole catalog, from the person's most recent
        `history_items` items (a cap that bounds the cost for the biggest buyers)."""
        n_items = self.n_items_
        recent = person.recent(self.history_items)
        items = person.items[recent]
        ease = np.zeros(n_items)
        rows = self.ease_position_[items]
        rows = rows[rows >= 0]
        if len(rows):
            summed = self.ease_.weights_[rows].sum(axis=0, dtype=np.float32)
            if self.ease_full_:
                ease = summed.astype(np.float64)
            else:
                ease[self.ease_.items_] = summed
        age = np.maximum(now - person.last[recent], 0.0)
        presence = np.minimum(
            person.invoices[recent] * decay(age, self.cooccurrence_.person_half_life_days), 1.0
        )
        cooccurrence = _rows_sum(self.cooccurrence_.similarity_, items, presence)
        if self.als_factors > 0:
            als = self.als_.item_factors_ @ self.als_.fold_in(items, person.invoices[recent])
        else:
            als = np.zeros(n_items)
        return ease, cooccurrence, als

    def candidate_features(self, history: History, now: float) -> tuple[IntArray, FloatArray]:
        """The person's candidates and one row of `features.FEATURES` each: what the trees score."""
        baskets = Baskets.of(history, self.n_items_)  # the candidate models share the item index
        person = PersonItems.of_baskets(baskets, now)
        orders = self.transitions_.person(history, baskets)
        if len(person.items):
            ease, cooccurrence, als = self._model_scores(person, now)
            transition = _rows_sum(self.transitions_.transition_, orders.last_items, orders.last_weights)
            k = self.model_candidates
            pools = [
                person.items[person.strongest(self.own_candidates)],
                _best(ease, k),
                _best(cooccurrence, k),
                _best(als, k if self.als_factors > 0 else 0),
                _best(transition, self.transition_candidates),
                self.trending_,
            ]
            candidates = distinct(np.concatenate(pools))
            ease, cooccurrence, als = ease[candidates], cooccurrence[candidates], als[candidates]
            transition = transition[candidates]
        else:
            candidates = distinct(np.concatenate([self.trending_, self.popular_]))
            ease = cooccurrence = als = transition = np.zeros(len(candidates))
        rebuy = rebuy_columns(self.transitions_, orders, candidates)
        features = person_item_features(
            candidates, person, now, self.stats_, ease, cooccurrence, als, transition, rebuy
        )
        return candidates, features

    def score(self, history: History, now: float) -> FloatArray:
        if not hasattr(self, "trees_"):
            raise NotFittedError("rerank is not fitted: call fit() or load() first")
        candidates, features = self.candidate_features(history, now)
        raw = self.trees_.predict(features)
        # Everything outside the candidates ranks below them, in popularity order.
        scores: FloatArray = self.popularity_ + (float(raw.min()) - 2.0)
        scores[candidates] = raw
        return scores

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if not hasattr(self, "trees_"):
            raise NotFittedError("rerank is not fitted: nothing to save")
        self.ease_.save(directory / "ease")
        self.cooccurrence_.save(directory / "cooccurrence")
        if self.als_factors > 0:
            self.als_.save(directory / "als")
        save_arrays(
            directory,
            self.name,
            self.get_params(),
            popularity_=self.popularity_,
            **self.trees_.arrays("trees_"),
            **self.stats_.arrays(),
            **self.transitions_.arrays("transitions_"),
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        params, arrays = load_arrays(directory)
        model = cls(**params)
        model.ease_ = EASERecommender.load(directory / "ease")
        model.cooccurrence_ = CooccurrenceRecommender.load(directory / "cooccurrence")
        model.als_ = (
            ALSRecommender.load(directory / "als") if model.als_factors > 0 else ALSRecommender(factors=1)
        )
        model.stats_ = ItemStats.from_arrays(arrays)
        model.transitions_ = model._transitions().load_arrays(arrays, "transitions_")
        model.trees_ = TreeEnsemble.from_arrays(arrays, "trees_")
        model.popularity_ = np.asarray(arrays["popularity_"], dtype=np.float64)
        model._prepare()
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
    """Each user's distinct items, sorted."""
    width = int(items.max()) + 1 if len(items) else 1
    pairs = distinct(users.astype(np.int64) * width + items)
    owners, bought = pairs // width, pairs % width
    unique, starts = np.unique(owners, return_index=True)
    bounds = [*starts.tolist(), len(pairs)]
    return {int(u): bought[bounds[k] : bounds[k + 1]] for k, u in enumerate(unique)}


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
    return np.argpartition(-scores, k - 1)[:k].astype(np.int64, copy=False)


def _rows_sum(matrix: sparse.csr_matrix, rows: IntArray, weights: FloatArray) -> FloatArray:
    """`weights @ matrix[rows]` as a dense vector, with numpy alone (scipy's row indexing costs more
    than the sum for the few dozen rows of one person)."""
    indptr = matrix.indptr
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(matrix.shape[1])
    ends = np.cumsum(lengths)
    positions = np.arange(total) + np.repeat(starts - (ends - lengths), lengths)
    values = matrix.data[positions] * np.repeat(weights, lengths)
    summed: FloatArray = np.bincount(matrix.indices[positions], values, matrix.shape[1]).astype(
        np.float64, copy=False
    )
    return summed
