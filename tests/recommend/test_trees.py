"""`TreeEnsemble.predict`: the level walk over unrolled trees against a plain walk, node by node."""

from __future__ import annotations

import numpy as np
import pytest

from shopkeeper.recommend import trees
from shopkeeper.recommend.trees import TreeEnsemble


def random_ensemble(rng: np.random.Generator, n_trees: int, max_depth: int, n_features: int) -> TreeEnsemble:
    """Trees of random shapes (leaves at every depth, some trees a single leaf), laid out like
    `from_histogram_boosting`: leaves point to themselves, with feature 0 and threshold +inf."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    value: list[float] = []
    roots: list[int] = []
    deepest = 0

    def grow(depth: int) -> int:
        nonlocal deepest
        node = len(feature)
        feature.append(0)
        threshold.append(np.inf)
        left.append(node)
        right.append(node)
        value.append(0.0)
        deepest = max(deepest, depth)
        if depth < max_depth and rng.random() < 0.8:
            feature[node] = int(rng.integers(n_features))
            threshold[node] = float(rng.integers(-3, 4)) / 2  # ties with the data: equal goes left
            left[node] = grow(depth + 1)
            right[node] = grow(depth + 1)
        else:
            value[node] = float(rng.normal())
        return node

    for _ in range(n_trees):
        roots.append(grow(0))
    return TreeEnsemble(
        feature=np.array(feature, np.int64),
        threshold=np.array(threshold),
        left=np.array(left, np.int64),
        right=np.array(right, np.int64),
        value=np.array(value),
        roots=np.array(roots, np.int64),
        depth=deepest,
        baseline=float(rng.normal()),
    )


def reference_leaves(ensemble: TreeEnsemble, features: np.ndarray) -> np.ndarray:
    """Each (row, tree)'s leaf value, following the nodes one by one in Python."""
    leaves = np.zeros((len(features), len(ensemble.roots)))
    for row, x in enumerate(features):
        for tree, node in enumerate(ensemble.roots.tolist()):
            while ensemble.left[node] != node:
                go_right = x[ensemble.feature[node]] > ensemble.threshold[node]
                node = int(ensemble.right[node] if go_right else ensemble.left[node])
            leaves[row, tree] = ensemble.value[node]
    return leaves


@pytest.mark.parametrize("seed", range(5))
def test_level_walk_reaches_the_leaves_of_a_plain_walk(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ensemble = random_ensemble(rng, n_trees=int(rng.integers(1, 30)), max_depth=7, n_features=5)
    features = rng.integers(-4, 5, size=(60, 5)) / 2  # many values equal to a threshold
    features[0, :] = np.inf
    features[1, :] = -np.inf
    expected = ensemble.baseline + reference_leaves(ensemble, features).sum(axis=1)
    assert ensemble._leaves is not None  # unrolled
    np.testing.assert_array_equal(ensemble.predict(features), expected)
    np.testing.assert_array_equal(ensemble._walk_nodes(np.ascontiguousarray(features)), expected)
    np.testing.assert_array_equal(ensemble.predict(np.asfortranarray(features)), expected)
    assert ensemble.predict(features[:0]).shape == (0,)


def test_trees_too_deep_to_unroll_walk_node_by_node(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    monkeypatch.setattr(trees, "MAX_UNROLLED", 4)
    ensemble = random_ensemble(rng, n_trees=10, max_depth=6, n_features=3)
    assert ensemble._leaves is None
    features = rng.integers(-4, 5, size=(30, 3)) / 2
    expected = ensemble.baseline + reference_leaves(ensemble, features).sum(axis=1)
    np.testing.assert_array_equal(ensemble.predict(features), expected)


def test_single_leaf_trees_score_their_leaves() -> None:
    ensemble = TreeEnsemble(
        feature=np.zeros(2, np.int64),
        threshold=np.full(2, np.inf),
        left=np.arange(2),
        right=np.arange(2),
        value=np.array([0.25, 0.5]),
        roots=np.arange(2),
        depth=0,
        baseline=1.0,
    )
    np.testing.assert_array_equal(ensemble.predict(np.zeros((3, 4))), [1.75, 1.75, 1.75])
