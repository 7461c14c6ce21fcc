"""The default re-ranker's parts: its training windows, the person features and the fast row sums."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from tests.recommend.test_models import END, GROUP, a_person, checkerboard

from shopkeeper.recommend.base import History, Interactions
from shopkeeper.recommend.default import RerankRecommender, _rows_sum
from shopkeeper.recommend.features import (
    FEATURES,
    NEVER,
    ItemStats,
    PersonItems,
    person_item_features,
    ranks,
)
from shopkeeper.recommend.signals import distinct, window_popularity
from shopkeeper.recommend.transitions import PersonOrders, Transitions

DAY = 86_400.0


def test_rows_sum_is_the_weighted_sum_of_the_sparse_rows() -> None:
    rng = np.random.default_rng(0)
    matrix = sparse.random(40, 30, density=0.2, random_state=1, format="csr")
    for rows in (np.array([3, 7, 7, 39]), np.array([0]), np.zeros(0, np.int64)):
        weights = rng.random(len(rows))
        expected = np.asarray(weights @ matrix[rows].toarray()).ravel() if len(rows) else np.zeros(30)
        np.testing.assert_allclose(_rows_sum(matrix, rows.astype(np.int64), weights), expected, atol=1e-12)


def test_ranks_order_ties_as_they_come() -> None:
    assert ranks(np.array([1.0, 3.0, 3.0, 0.0])).tolist() == [3.0, 1.0, 2.0, 4.0]
    assert ranks(np.zeros(3)).tolist() == [1.0, 2.0, 3.0]
    assert ranks(np.zeros(0)).tolist() == []


def test_person_items_and_orders_match_a_plain_grouping() -> None:
    rng = np.random.default_rng(3)
    n = 200
    history = History(
        rng.integers(-2, 30, n),  # some outside the catalog of 25
        rng.integers(0, 40, n) * DAY,  # several items per order
        rng.random(n),
        (rng.random(n) < 0.2).astype(np.int64),  # some not purchases
    )
    now = 45 * DAY
    person = PersonItems.of(history, 25, now)
    keep = (history.kinds == 0) & (history.item_idx >= 0) & (history.item_idx < 25)
    items, times, weights = history.item_idx[keep], history.times[keep], history.weights[keep]
    unique, inverse = np.unique(items, return_inverse=True)
    assert person.items.tolist() == unique.tolist()
    np.testing.assert_array_equal(person.invoices, np.bincount(inverse, weights))
    np.testing.assert_array_equal(person.first, [times[items == i].min() for i in unique])
    np.testing.assert_array_equal(person.last, [times[items == i].max() for i in unique])
    decayed = weights * np.exp2(-(np.maximum(now - times, 0.0) / DAY) / 30.0)
    np.testing.assert_array_equal(person.decayed_30, np.bincount(inverse, decayed))
    assert person.orders == len(np.unique(times))
    assert (person.first_order, person.last_order) == (times.min(), times.max())

    orders = PersonOrders.of(history, 25, last_orders=2)
    stamps = np.unique(times)
    baskets = [set(items[times == t].tolist()) for t in stamps]
    assert orders.items.tolist() == unique.tolist()
    chances = [sum(i in b for b in baskets[:-1]) for i in unique.tolist()]
    rebuys = [sum(i in b and i in c for b, c in pairwise(baskets)) for i in unique.tolist()]
    assert orders.chances.tolist() == chances and orders.rebuys.tolist() == rebuys
    last = sorted(baskets[-1] | baskets[-2])
    assert orders.last_items.tolist() == last
    assert orders.last_weights.tolist() == [(i in baskets[-1]) + 0.5 * (i in baskets[-2]) for i in last]


def test_person_items_sum_invoices_and_rhythm() -> None:
    now = 100 * DAY
    # Item 4 bought on days 10, 40 and 70; item 2 once on day 70 (same order as item 4's last).
    history = History(
        np.array([4, 4, 2, 4, 9], np.int64),
        np.array([10, 40, 70, 70, 80]) * DAY,
        np.ones(5),
        np.array([0, 0, 0, 0, 2], np.int64),  # the last one is a view: not a purchase
    )
    person = PersonItems.of(history, n_items=10, now=now)
    assert person.items.tolist() == [2, 4]
    assert person.invoices.tolist() == [1.0, 3.0]
    assert (person.last / DAY).tolist() == [70.0, 70.0]
    assert (person.first / DAY).tolist() == [70.0, 10.0]
    assert person.orders == 3  # days 10, 40, 70
    np.testing.assert_allclose(person.decayed_30, [0.5, 0.5 + 0.25 + 0.125])

    stats = ItemStats.of(
        Interactions(
            user_idx=np.array([0, 0, 1], np.int64),
            item_idx=np.array([4, 4, 2], np.int64),
            times=np.array([10, 50, 60]) * DAY,
            weights=np.ones(3),
            kinds=np.zeros(3, np.int64),
            user_ids=["a", "b"],
            item_ids=[str(i) for i in range(10)],
        )
    )
    candidates = np.array([2, 4, 5], np.int64)
    zeros = np.zeros(3)
    rows = person_item_features(candidates, person, now, stats, zeros, zeros, zeros, zeros, np.zeros((3, 3)))
    column = {name: rows[:, k] for k, name in enumerate(FEATURES)}
    assert rows.shape == (3, len(FEATURES)) and np.isfinite(rows).all()
    assert column["owned"].tolist() == [1.0, 1.0, 0.0]
    assert column["invoices"].tolist() == [1.0, 3.0, 0.0]
    assert column["days_since_item"].tolist() == [30.0, 30.0, NEVER]
    assert column["own_gap_days"].tolist() == [NEVER, 30.0, NEVER]  # (70 - 10) / 2 reorders
    assert column["overdue"].tolist() == [-1.0, 1.0, -1.0]
    assert column["repeat_rank"].tolist() == [2.0, 1.0, NEVER]
    assert column["person_order_gap"].tolist() == [30.0] * 3
    # Item 4 was re-bought by person a after 40 days: its typical gap is 40 days.
    assert column["item_gap_days"].tolist() == [NEVER, 40.0, NEVER]


def test_training_windows_never_see_their_own_labels() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    times = np.sort(rng.uniform(0, 200, n)) * DAY
    data = Interactions(
        user_idx=rng.integers(0, 50, n).astype(np.int64),
        item_idx=rng.integers(0, 30, n).astype(np.int64),
        times=times,
        weights=np.ones(n),
        kinds=np.zeros(n, np.int64),
        user_ids=[str(u) for u in range(50)],
        item_ids=[str(i) for i in range(30)],
    )
    model = RerankRecommender(windows=3, window_days=30.0, stride_days=15.0)
    windows = list(model._windows(data))
    starts = [start for start, _, _ in windows]
    assert len(windows) == 3
    assert starts == sorted(starts)  # oldest first
    np.testing.assert_allclose(np.diff(starts), 15 * DAY)
    for start, before, during in windows:
        assert before.times.max() < start
        assert data.times[during].min() >= start
        assert data.times[during].max() <= start + 30 * DAY + 1.0
        assert before.n_items == data.n_items  # the same index space


@pytest.mark.parametrize("als_factors", [0, 4])
def test_rerank_with_or_without_als_saves_and_loads(tmp_path: Path, als_factors: int) -> None:
    data = checkerboard()
    model = RerankRecommender(als_factors=als_factors, trees=10, max_depth=3, negative_share=1.0).fit(data)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "als").exists() == (als_factors > 0)
    loaded = RerankRecommender.load(tmp_path / "m")
    person = a_person([0, 1], [3, 10])
    np.testing.assert_allclose(loaded.score(person, END), model.score(person, END), rtol=1e-12)
    best = np.argsort(-loaded.score(person, END))[:5]
    assert set(best.tolist()) <= set(range(GROUP))  # the checkerboard's group A


def test_item_stats_count_recent_buyers_like_window_popularity() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    data = Interactions(
        user_idx=rng.integers(0, 60, n).astype(np.int64),
        item_idx=rng.integers(0, 40, n).astype(np.int64),
        times=rng.uniform(0, 150, n).round(1) * DAY,
        weights=np.ones(n),
        kinds=rng.choice([0, 0, 0, 2], n).astype(np.int64),  # some views, which never count
        user_ids=[str(u) for u in range(60)],
        item_ids=[str(i) for i in range(40)],
    )
    stats = ItemStats.of(data)
    for days, counted in ((7.0, stats.buyers_7), (30.0, stats.buyers_30), (90.0, stats.buyers_90)):
        np.testing.assert_array_equal(counted, window_popularity(data, days))
    earlier = window_popularity(data, 30.0, end=data.end - 30 * DAY)
    np.testing.assert_array_equal(stats.buyers_prev_30, earlier)
    np.testing.assert_array_equal(stats.buyers_all, window_popularity(data, None))


def test_distinct_is_numpy_unique() -> None:
    rng = np.random.default_rng(5)
    for values in (rng.integers(0, 30, 200), rng.random(50).round(1), np.zeros(0, np.int64), np.array([7])):
        np.testing.assert_array_equal(distinct(values), np.unique(values))


def test_transitions_count_the_next_order() -> None:
    """Orders alternate 0, 1, 0, 1: each item is followed by the other, never by itself."""
    day = DAY
    users = np.array([0, 0, 0, 0, 1, 1], np.int64)
    items = np.array([0, 1, 0, 1, 0, 1], np.int64)
    times = np.array([0, 1, 2, 3, 0, 1], np.float64) * day
    data = Interactions(users, items, times, np.ones(6), np.zeros(6, np.int64), ["a", "b"], ["x", "y", "z"])
    model = Transitions(horizon=1, half_life_days=None, beta=0.0, shrink=0.0).fit(data)
    dense = model.transition_.toarray()
    assert dense[0, 1] == 1.0
    assert dense[1, 0] == 1.0  # user 0: 1 at day 1 is followed by 0 at day 2
    assert dense[0, 0] == 0.0 and model.rebuy_[0] == 0.0
    person = PersonOrders.of(History(items[:4], times[:4], np.ones(4), np.zeros(4, np.int64)), 3, 1)
    assert person.last_items.tolist() == [1]
    assert person.chances.tolist() == [2.0, 1.0] and person.rebuys.tolist() == [0.0, 0.0]
