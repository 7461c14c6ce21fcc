"""Gradient-boosted trees as plain arrays: learned by scikit-learn, saved as `.npz`, scored by numpy.

`HistGradientBoostingClassifier` pickles by default; we take its fitted trees apart into flat node
arrays instead (`from_histogram_boosting`), so a saved model is numbers only and loads with
`allow_pickle=False`. Scoring walks every tree at once, one level per step, which for a hundred
candidates and a few dozen shallow trees takes well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopkeeper.recommend.base import FloatArray, IntArray


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

    def __post_init__(self) -> None:
        # Derived once for `predict`: node k's children side by side (2k: left, 2k+1: right), and
        # native index types, so each level of the walk is four `take`s and a comparison.
        object.__setattr__(
            self, "_children", np.column_stack((self.left, self.right)).ravel().astype(np.intp)
        )
        object.__setattr__(self, "_feature", self.feature.astype(np.intp))
        object.__setattr__(self, "_roots", self.roots.astype(np.intp))

    def predict(self, features: FloatArray) -> FloatArray:
        """Raw scores (log-odds for a classifier), one per row of `features` (no NaN: use a sentinel)."""
        n_rows, n_features = features.shape
        flat = np.ascontiguousarray(features, dtype=np.float64).ravel()
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
