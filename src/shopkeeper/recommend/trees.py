"""Gradient-boosted trees as plain arrays: learned by scikit-learn, saved as `.npz`, scored by numpy.

`HistGradientBoostingClassifier` pickles by default; we take its fitted trees apart into flat node
arrays instead (`from_histogram_boosting`), so a saved model is numbers only and loads with
`allow_pickle=False`. Scoring walks every tree at once, one level per step, over the trees unrolled
into complete binary trees (`TreeEnsemble._unrolled`): about 0.3 ms for 130 candidates and 120 trees
of depth 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopkeeper.recommend.base import FloatArray, IntArray

MAX_UNROLLED = 1 << 17  # slots per level beyond which `predict` walks node by node (deep trees)


@dataclass(frozen=True)
class TreeEnsemble:
    """Trees as flat arrays. Node `k` sends a row to `left[k]` when `x[feature[k]] <= threshold[k]`,
    else to `right[k]`; leaves point to themselves (threshold +inf) and hold `value[k]`. `roots` are
    the trees' first nodes; the raw score is `baseline + sum of the leaves reached`."""

    feature: IntArray
    threshold: FloatArray
    left: IntArray
    right: IntArray
    value: FloatArray
    roots: IntArray
    depth: int
    baseline: float
    _children: IntArray = field(init=False, repr=False, compare=False)
    _feature: IntArray = field(init=False, repr=False, compare=False)
    _roots: IntArray = field(init=False, repr=False, compare=False)
    _levels: tuple[tuple[IntArray, FloatArray], ...] = field(init=False, repr=False, compare=False)
    _leaves: FloatArray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once for `predict`. For the node-by-node walk: node k's children side by side (2k:
        # left, 2k+1: right), and native index types.
        object.__setattr__(
            self, "_children", np.column_stack((self.left, self.right)).ravel().astype(np.intp)
        )
        object.__setattr__(self, "_feature", self.feature.astype(np.intp))
        object.__setattr__(self, "_roots", self.roots.astype(np.intp))
        # For the level walk: the trees unrolled, when not too deep for it.
        levels: tuple[tuple[IntArray, FloatArray], ...] = ()
        leaves: FloatArray | None = None
        if self.depth > 0 and len(self.roots) << self.depth <= MAX_UNROLLED:
            levels, leaves = self._unrolled()
        object.__setattr__(self, "_levels", levels)
        object.__setattr__(self, "_leaves", leaves)

    def _unrolled(self) -> tuple[tuple[tuple[IntArray, FloatArray], ...], FloatArray]:
        """Every tree as a complete binary tree of `depth` levels: level `l` holds `2**l` slots per
        tree (tree `t`'s slot `s` at `t * 2**l + s`), whose children are slots `2s` (left) and
        `2s + 1` (right) of the next level; a leaf above the last level fills the slots below it with
        copies of itself (its children are itself). Returns each level's (feature, threshold) and the
        values of the last level's children, the leaves the walk ends on."""
        node = self._roots
        levels = []
        for _ in range(self.depth):
            levels.append((self._feature[node], self.threshold[node].astype(np.float64)))
            node = self._children[(2 * node[:, None] + np.arange(2)).ravel()]
        return tuple(levels), self.value[node].astype(np.float64)

    def predict(self, features: FloatArray) -> FloatArray:
        """Raw scores (log-odds for a classifier), one per row of `features` (no NaN: use a sentinel)."""
        table = np.ascontiguousarray(features, dtype=np.float64)
        if self._leaves is None:
            return self._walk_nodes(table)
        return self._walk_levels(table, self._leaves)

    def _walk_levels(self, table: FloatArray, leaves: FloatArray) -> FloatArray:
        """`predict` over the unrolled trees: one slot per (row, tree), `2 * slot + (x > threshold)`
        per level, so the next node needs no lookup (the same leaves as `_walk_nodes`, summed in the
        same order). Reuses its arrays across levels: this is most of a score's time."""
        n_rows, n_features = table.shape
        n_trees = len(self._roots)
        feature, threshold = self._levels[0]  # the roots' features are whole columns
        slot = np.add(2 * np.arange(n_trees, dtype=np.intp), table.take(feature, axis=1) > threshold)
        # Each row's offset in `flat`, for every tree (a full array: broadcasting it costs more).
        starts = np.arange(0, n_rows * n_features, n_features, dtype=np.intp)
        row_start = np.repeat(starts, n_trees).reshape(n_rows, n_trees)
        flat = table.ravel()
        column = np.empty((n_rows, n_trees), np.intp)
        value = np.empty((n_rows, n_trees))
        bound = np.empty((n_rows, n_trees))
        right = np.empty((n_rows, n_trees), np.bool_)
        for feature, threshold in self._levels[1:]:
            # Indices are in range by construction: "clip" (unlike "raise") writes to `out` unbuffered.
            feature.take(slot, out=column, mode="clip")
            np.add(column, row_start, out=column)
            flat.take(column, out=value, mode="clip")
            threshold.take(slot, out=bound, mode="clip")
            np.greater(value, bound, out=right)
            np.add(slot, slot, out=slot)
            np.add(slot, right, out=slot)
        total: FloatArray = self.baseline + leaves.take(slot, mode="clip").sum(axis=1)
        return total

    def _walk_nodes(self, table: FloatArray) -> FloatArray:
        """`predict` node by node (for trees too deep to unroll): the same result, slower."""
        n_rows, n_features = table.shape
        flat = table.ravel()
        row_start = (np.arange(n_rows, dtype=np.intp) * n_features)[:, None]
        node = np.broadcast_to(self._roots, (n_rows, len(self._roots)))
        for _ in range(self.depth):
            value = flat.take(row_start + self._feature.take(node))
            node = self._children.take(2 * node + (value > self.threshold.take(node)))
        total: FloatArray = self.baseline + self.value.take(node).sum(axis=1)
        return total

    @classmethod
    def average(cls, ensembles: list[TreeEnsemble]) -> TreeEnsemble:
        """One ensemble whose raw score is the mean of the given ensembles' (their trees side by side,
        each leaf divided by their number): bagging at the cost of one walk."""
        if not ensembles:
            raise ValueError("nothing to average")
        offsets = np.cumsum([0] + [len(e.value) for e in ensembles[:-1]])
        share = 1.0 / len(ensembles)
        return cls(
            feature=np.concatenate([e.feature for e in ensembles]),
            threshold=np.concatenate([e.threshold for e in ensembles]),
            left=np.concatenate([e.left + o for e, o in zip(ensembles, offsets, strict=True)]),
            right=np.concatenate([e.right + o for e, o in zip(ensembles, offsets, strict=True)]),
            value=np.concatenate([e.value * share for e in ensembles]),
            roots=np.concatenate([e.roots + o for e, o in zip(ensembles, offsets, strict=True)]),
            depth=max(e.depth for e in ensembles),
            baseline=float(np.mean([e.baseline for e in ensembles])),
        )

    def arrays(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}feature": self.feature,
            f"{prefix}threshold": self.threshold,
            f"{prefix}left": self.left,
            f"{prefix}right": self.right,
            f"{prefix}value": self.value,
            f"{prefix}roots": self.roots,
            f"{prefix}meta": np.array([self.depth, self.baseline]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], prefix: str) -> TreeEnsemble:
        meta = arrays[f"{prefix}meta"]
        return cls(
            feature=arrays[f"{prefix}feature"].astype(np.int64),
            threshold=arrays[f"{prefix}threshold"].astype(np.float64),
            left=arrays[f"{prefix}left"].astype(np.int64),
            right=arrays[f"{prefix}right"].astype(np.int64),
            value=arrays[f"{prefix}value"].astype(np.float64),
            roots=arrays[f"{prefix}roots"].astype(np.int64),
            depth=int(meta[0]),
            baseline=float(meta[1]),
        )


def from_histogram_boosting(model: Any) -> TreeEnsemble:
    """Flatten a fitted binary `HistGradientBoostingClassifier` (or a regressor) without categorical
    features. Missing values must not occur at scoring time (they would go right)."""
    features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
    offset, depth = 0, 0
    for iteration in model._predictors:
        if len(iteration) != 1:
            raise ValueError("only binary classifiers and regressors can be flattened")
        nodes = iteration[0].nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes)) + offset
        features.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
        thresholds.append(np.where(leaf, np.inf, nodes["num_threshold"]).astype(np.float64))
        lefts.append(np.where(leaf, own, nodes["left"].astype(np.int64) + offset))
        rights.append(np.where(leaf, own, nodes["right"].astype(np.int64) + offset))
        values.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
        roots.append(offset)
        depth = max(depth, int(nodes["depth"].max()))
        offset += len(nodes)
    baseline = float(np.ravel(model._baseline_prediction)[0])
    return TreeEnsemble(
        feature=np.concatenate(features),
        threshold=np.concatenate(thresholds),
        left=np.concatenate(lefts),
        right=np.concatenate(rights),
        value=np.concatenate(values),
        roots=np.array(roots, dtype=np.int64),
        depth=depth,
        baseline=baseline,
    )
