"""Every recommender's contract on a checkerboard with known answers, and save/load without pickle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shopkeeper.recommend import History, Interactions, load_model, top_n, train_default
from shopkeeper.recommend._model import NotFittedError
from shopkeeper.recommend.als import ALSRecommender
from shopkeeper.recommend.baselines import PopularityRecommender, RepeatRecommender
from shopkeeper.recommend.blend import BlendRecommender
from shopkeeper.recommend.default import RerankRecommender
from shopkeeper.recommend.ease import EASERecommender
from shopkeeper.recommend.neighbors import (
    BM25Recommender,
    CooccurrenceRecommender,
    ItemKNNRecommender,
    RP3betaRecommender,
)

DAY = 86_400.0
GROUP = 10  # items 0..9 belong to group A, 10..19 to group B; people 0..39 are A, 40..79 are B
END = 200 * DAY


def checkerboard(seed: int = 0) -> Interactions:
    """Two groups that never mix: each person buys items of their own group only, over 200 days.

    Within each group, lower item numbers sell more (item 0 and item 10 are the best sellers).
    """
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(80):
        base = 0 if user < 40 else GROUP
        for _ in range(12):
            item = base + min(int(rng.geometric(0.3)) - 1, GROUP - 1)
            users.append(user)
            items.append(item)
            times.append(float(rng.uniform(0, END)))
    n = len(users)
    return Interactions(
        user_idx=np.array(users, np.int64),
        item_idx=np.array(items, np.int64),
        times=np.array(times),
        weights=np.ones(n),
        kinds=np.zeros(n, np.int64),
        user_ids=[f"u{u}" for u in range(80)],
        item_ids=[f"i{i}" for i in range(2 * GROUP)],
    )


def a_person(items: list[int], days_ago: list[float]) -> History:
    n = len(items)
    times = END - np.array(days_ago, dtype=np.float64) * DAY
    return History(np.array(items, np.int64), times, np.ones(n), np.zeros(n, np.int64))


PERSONAL: dict[str, Callable[[], Any]] = {
    "itemknn": lambda: ItemKNNRecommender(k=20),
    "bm25": lambda: BM25Recommender(k=20),
    "rp3beta": lambda: RP3betaRecommender(k=20),
    "cooccurrence": lambda: CooccurrenceRecommender(k=20),
    "ease": lambda: EASERecommender(l2=10.0),
    "als": lambda: ALSRecommender(factors=4, regularization=0.1, alpha=5.0, iterations=10),
    "rerank": lambda: RerankRecommender(trees=20, max_depth=3, negative_share=1.0),
}
ALL: dict[str, Callable[[], Any]] = {
    **PERSONAL,
    "popularity": lambda: PopularityRecommender(window_days=60.0),
    "repeat": lambda: RepeatRecommender(half_life_days=30.0),
    "blend": lambda: BlendRecommender([RepeatRecommender(), EASERecommender(l2=10.0)], [1.0, 0.5]),
}


@pytest.fixture(scope="module")
def data() -> Interactions:
    return checkerboard()


@pytest.fixture(scope="module")
def fitted(data: Interactions) -> dict[str, Any]:
    return {name: make().fit(data) for name, make in ALL.items()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_score_is_one_finite_float_per_item(fitted: dict[str, Any], name: str) -> None:
    scores = fitted[name].score(a_person([0, 1], [3, 10]), END)
    assert scores.shape == (2 * GROUP,)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", sorted(PERSONAL))
def test_a_group_a_person_gets_group_a_items(fitted: dict[str, Any], name: str) -> None:
    person = a_person([0, 1, 2], [5, 20, 40])
    best, _ = top_n(fitted[name].score(person, END), 5, exclude=np.array([0, 1, 2]))
    assert set(best.tolist()) <= set(range(GROUP)), best


@pytest.mark.parametrize("name", sorted(PERSONAL))
def test_a_group_b_person_gets_group_b_items(fitted: dict[str, Any], name: str) -> None:
    person = a_person([10, 11, 13], [2, 9, 30])
    best, _ = top_n(fitted[name].score(person, END), 5, exclude=np.array([10, 11, 13]))
    assert set(best.tolist()) <= set(range(GROUP, 2 * GROUP)), best


@pytest.mark.parametrize("name", sorted(ALL))
def test_nobody_gets_the_best_sellers(fitted: dict[str, Any], name: str) -> None:
    """Cold start: no history falls back to popularity, so a best seller (item 0 or 10) comes first."""
    best, _ = top_n(fitted[name].score(History.empty(), END), 2)
    assert best[0] in (0, 10)


def test_popularity_counts_people_in_the_window() -> None:
    interactions = Interactions(
        user_idx=np.array([0, 0, 0, 1, 2, 2], np.int64),
        item_idx=np.array([1, 1, 1, 2, 2, 0], np.int64),
        times=np.array([100.0, 101.0, 102.0, 100.0, 100.0, 0.0]) * DAY,
        weights=np.ones(6),
        kinds=np.zeros(6, np.int64),
        user_ids=["a", "b", "c"],
        item_ids=["x", "y", "z"],
    )
    model = PopularityRecommender(window_days=10.0).fit(interactions)
    # z: 2 people recently; y: 1 person (3 invoices); x: only long ago, so last.
    assert top_n(model.score(History.empty(), 102 * DAY), 3)[0].tolist() == [2, 1, 0]


def test_repeat_ranks_own_items_by_recency_then_popularity(fitted: dict[str, Any]) -> None:
    model = fitted["repeat"]
    scores = model.score(a_person([15, 19, 19], [100, 1, 2]), END)
    best, _ = top_n(scores, 3)
    # Own items first, the more recent one ahead; then the best seller of the whole shop.
    assert best[:2].tolist() == [19, 15]
    assert best[2] in (0, 10)
    assert scores[15] > scores.max(initial=0, where=~np.isin(np.arange(20), [15, 19]))


def test_repeat_breaks_ties_by_popularity_not_index(fitted: dict[str, Any]) -> None:
    model = RepeatRecommender(half_life_days=None).fit(checkerboard())
    best, _ = top_n(model.score(a_person([9, 0], [5, 5]), END), 2)
    assert best.tolist() == [0, 9]
    best, _ = top_n(model.score(a_person([0, 9], [5, 5]), END), 2)
    assert best.tolist() == [0, 9]


def test_fresh_history_changes_the_next_score_without_refit(fitted: dict[str, Any]) -> None:
    model = fitted["rerank"]
    before = model.score(a_person([0], [50]), END)
    after = model.score(a_person([0, 7], [50, 0]), END)
    assert not np.allclose(before, after)


@pytest.mark.parametrize("name", sorted(ALL))
def test_save_load_round_trip_without_pickle(fitted: dict[str, Any], name: str, tmp_path: Path) -> None:
    model = fitted[name]
    model.save(tmp_path / "m")
    for stored in (tmp_path / "m").rglob("*.npz"):
        with np.load(stored, allow_pickle=False) as arrays:
            assert all(arrays[key].dtype != object for key in arrays.files)
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    for person in (a_person([0, 1], [3, 10]), a_person([12], [1]), History.empty()):
        np.testing.assert_allclose(loaded.score(person, END), model.score(person, END), rtol=1e-12)


@pytest.mark.parametrize("name", ["popularity", "ease", "itemknn", "als"])
def test_score_before_fit_is_a_clear_error(name: str) -> None:
    with pytest.raises(NotFittedError):
        ALL[name]().score(History.empty(), END)


def test_unknown_items_in_a_history_are_ignored(fitted: dict[str, Any]) -> None:
    person = History(np.array([0, 999], np.int64), np.array([END, END]), np.ones(2), np.zeros(2, np.int64))
    for model in fitted.values():
        assert np.isfinite(model.score(person, END)).all()


def test_ease_cap_keeps_the_most_bought_items(data: Interactions) -> None:
    model = EASERecommender(l2=10.0, max_items=4).fit(data)
    buyers = np.array([len(np.unique(data.user_idx[data.item_idx == i])) for i in range(20)])
    assert sorted(model.items_.tolist()) == sorted(np.argsort(-buyers, kind="stable")[:4].tolist())
    assert buyers[model.items_].min() >= np.delete(buyers, model.items_).max()
    scores = model.score(a_person([0], [1]), END)
    outside = np.setdiff1d(np.arange(20), model.items_)
    assert scores[outside].max() < 1e-8  # beyond the cap: popularity tie-break only


def test_train_default_is_the_reranker(data: Interactions) -> None:
    assert isinstance(train_default(data, trees=10, max_depth=3), RerankRecommender)


def test_train_default_falls_back_to_a_blend_on_a_tiny_shop() -> None:
    tiny = Interactions(
        user_idx=np.array([0, 1], np.int64),
        item_idx=np.array([0, 1], np.int64),
        times=np.array([0.0, 1.0]),
        weights=np.ones(2),
        kinds=np.zeros(2, np.int64),
        user_ids=["a", "b"],
        item_ids=["x", "y"],
    )
    assert isinstance(train_default(tiny), BlendRecommender)


def test_top_n_breaks_ties_by_lower_index_and_excludes() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_n(scores, 3)[0].tolist() == [1, 2, 4]
    assert top_n(scores, 3, exclude=np.array([2]))[0].tolist() == [1, 4, 3]
    assert top_n(scores, 10)[0].tolist() == [1, 2, 4, 3, 0]
    assert len(top_n(np.full(3, -np.inf), 2)[0]) == 0
