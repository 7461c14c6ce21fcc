"""Readable rules for personas: conditions on unscaled features, their sentences, and shallow trees.

A rule is a list of leaves, each a list of `Condition`s joined by "and"; the leaves are joined by "or".
Thresholds are rounded for reading *before* a rule is evaluated (days to whole days, amounts to two
significant digits, shares to 5%), so the agreement reported for a rule is the agreement of the sentence
as printed, not of the tree behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.tree import DecisionTreeClassifier

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

ORDERS = "orders"
RECENCY = "recency"
REVENUE = "revenue"
TENURE = "tenure"
SHARE = "share"
COUNTRY = "country"
CHANNEL = "channel"

MAX_DEPTH = 3
MAX_LEAVES = 2  # leaves joined by "or" in one rule
TREE_SAMPLE = 20_000  # rows a rule's tree is fitted on (evaluated on all)


@dataclass(frozen=True)
class Column:
    """One readable feature: its kind (ORDERS, RECENCY, ...) and, for shares and one-hots, its label."""

    kind: str
    label: str = ""


@dataclass(frozen=True)
class Readable:
    """Unscaled features a marketer can read, one row per person: `values[:, j]` is `columns[j]`."""

    values: FloatArray
    columns: list[Column]


@dataclass(frozen=True)
class Condition:
    """`values[:, column] <= threshold` when `at_most`, else `values[:, column] > threshold`."""

    column: int
    at_most: bool
    threshold: float


Leaf = tuple[Condition, ...]


@dataclass(frozen=True)
class Rule:
    """A persona's rule: leaves joined by "or", its sentence, and how well it matches the members."""

    leaves: tuple[Leaf, ...]
    text: str
    precision: float
    recall: float

    @property
    def agreement(self) -> float:
        """F1 of the rule as printed against the members: 2 p r / (p + r)."""
        total = self.precision + self.recall
        return 0.0 if total == 0 else 2 * self.precision * self.recall / total


def rounded(column: Column, threshold: float) -> float:
    """A tree threshold rounded the way its sentence prints it (the rule is evaluated with this value)."""
    if column.kind == ORDERS:
        return math.floor(threshold) + 0.5  # integer counts: the split is exact
    if column.kind in (RECENCY, TENURE):
        return float(max(round(threshold), 0))
    if column.kind == REVENUE:
        if threshold <= 0:
            return 0.0
        digits = 1 - math.floor(math.log10(threshold))
        return float(round(threshold, digits))
    if column.kind == SHARE:
        return min(max(round(threshold * 20) / 20, 0.05), 0.95)
    return 0.5  # one-hot


def selects(values: FloatArray, leaves: Sequence[Leaf]) -> BoolArray:
    """The rows that any of `leaves` selects."""
    chosen = np.zeros(len(values), dtype=bool)
    for leaf in leaves:
        mask = np.ones(len(values), dtype=bool)
        for condition in leaf:
            x = values[:, condition.column]
            mask &= x <= condition.threshold if condition.at_most else x > condition.threshold
        chosen |= mask
    return chosen


def _interval(leaf: Leaf) -> dict[int, tuple[float, float]]:
    """Each column's (exclusive lower, inclusive upper) bound along a leaf's path."""
    bounds: dict[int, tuple[float, float]] = {}
    for condition in leaf:
        low, high = bounds.get(condition.column, (-math.inf, math.inf))
        if condition.at_most:
            high = min(high, condition.threshold)
        else:
            low = max(low, condition.threshold)
        bounds[condition.column] = (low, high)
    return bounds


def _count_phrase(low: float, high: float) -> str:
    lo = math.floor(low) + 1 if math.isfinite(low) else None
    hi = math.floor(high) if math.isfinite(high) else None

    def times(n: int) -> str:
        return "once" if n == 1 else f"{n} times"

    if lo is not None and hi is not None:
        return f"ordered {times(lo)}" if lo == hi else f"ordered {lo}-{hi} times"
    if lo is not None:
        return f"ordered {lo}+ times"
    return f"ordered at most {times(hi or 0)}" if hi != 1 else "ordered once"


def phrase(column: Column, low: float, high: float, money: Callable[[float], str]) -> str:
    """One condition's words, from its bounds (`low` exclusive, `high` inclusive, either infinite)."""
    has_low, has_high = math.isfinite(low), math.isfinite(high)
    if column.kind == ORDERS:
        return _count_phrase(low, high)
    if column.kind == RECENCY:
        if has_low and has_high:
            return f"last order {low:.0f}-{high:.0f} days ago"
        if has_high and high < 1:
            return "last order today"
        return f"last order within {high:.0f} days" if has_high else f"no order for {low:.0f}+ days"
    if column.kind == TENURE:
        if has_low and has_high:
            return f"first seen {low:.0f}-{high:.0f} days ago"
        return f"first seen within {high:.0f} days" if has_high else f"customer for {low:.0f}+ days"
    if column.kind == REVENUE:
        if has_low and has_high:
            return f"spent {money(low)}-{money(high)}"
        return f"spent {money(low)}+" if has_low else f"spent at most {money(high)}"
    if column.kind == SHARE:
        if has_low and has_high:
            return f"{column.label} is {low:.0%}-{high:.0%} of what they buy"
        if has_low:
            lead = "mostly" if low >= 0.3 else "some"
            return f"{lead} {column.label} ({low:.0%}+ of what they buy)"
        return f"little {column.label} (at most {high:.0%})"
    where = "in" if column.kind == COUNTRY else "came by"
    return f"{where} {column.label}" if has_low else f"not {where} {column.label}"


def sentence(leaves: Sequence[Leaf], columns: Sequence[Column], money: Callable[[float], str]) -> str:
    """A rule's words: each leaf's conditions joined by ", ", the leaves by "; or "."""
    parts = []
    for leaf in leaves:
        bounds = _interval(leaf)
        parts.append(", ".join(phrase(columns[j], *bounds[j], money) for j in sorted(bounds)))
    return "; or ".join(part for part in parts if part) or "everyone"


def _score(chosen: BoolArray, members: BoolArray) -> tuple[float, float]:
    hits = int(np.count_nonzero(chosen & members))
    precision = hits / max(int(np.count_nonzero(chosen)), 1)
    recall = hits / max(int(np.count_nonzero(members)), 1)
    return precision, recall


def make_rule(
    readable: Readable, members: BoolArray, leaves: Sequence[Leaf], money: Callable[[float], str]
) -> Rule:
    """A rule from leaves whose thresholds are already rounded, scored against `members`."""
    precision, recall = _score(selects(readable.values, leaves), members)
    return Rule(tuple(leaves), sentence(leaves, readable.columns, money), precision, recall)


def _node_paths(tree: DecisionTreeClassifier, columns: Sequence[Column]) -> list[Leaf]:
    """Every node's path from the root but the root's, thresholds rounded for reading: a leaf's, and an
    inner node's too (one shorter condition can say what two sibling leaves say)."""
    structure = tree.tree_
    paths: list[Leaf] = []
    stack: list[tuple[int, Leaf]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        if path:
            paths.append(path)
        left, right = int(structure.children_left[node]), int(structure.children_right[node])
        if left == -1:
            continue
        feature = int(structure.feature[node])
        threshold = rounded(columns[feature], float(structure.threshold[node]))
        stack.append((right, (*path, Condition(feature, False, threshold))))
        stack.append((left, (*path, Condition(feature, True, threshold))))
    return paths


def _f1(chosen: BoolArray, members: BoolArray) -> float:
    precision, recall = _score(chosen, members)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def tree_rule(
    readable: Readable, members: BoolArray, *, random_state: int, money: Callable[[float], str]
) -> Rule:
    """The rule for one group: a depth-3 tree (balanced classes) of members against everyone else, then
    up to `MAX_LEAVES` of its nodes' paths, each time the one that most improves the rule's F1 (by at least
    0.01; ties: the fewer conditions), evaluated on every row with the rounded thresholds."""
    n = len(members)
    rows = np.arange(n)
    if n > TREE_SAMPLE:
        rows = np.sort(np.random.default_rng(random_state).choice(n, TREE_SAMPLE, replace=False))
    tree = DecisionTreeClassifier(
        max_depth=MAX_DEPTH,
        class_weight="balanced",
        min_samples_leaf=max(5, len(rows) // 200),
        random_state=random_state,
    )
    tree.fit(readable.values[rows], members[rows])
    paths = _node_paths(tree, readable.columns)
    masks = [selects(readable.values, [path]) for path in paths]
    chosen: list[int] = []
    union, best = np.zeros(n, dtype=bool), 0.0
    while len(chosen) < MAX_LEAVES:
        scores = [(_f1(union | mask, members), -len(paths[i])) for i, mask in enumerate(masks)]
        i = max(range(len(paths)), key=lambda j: scores[j], default=None)
        if i is None or scores[i][0] < best + 0.01:
            break
        chosen.append(i)
        union, best = union | masks[i], scores[i][0]
    if not chosen:
        return Rule((), "no short rule", 0.0, 0.0)
    return make_rule(readable, members, [paths[i] for i in chosen], money)


def rule_labels(readable: Readable, rules: Sequence[Rule]) -> IntArray:
    """Each row's group by the rules alone: the first rule (in group order) that selects it, else -1."""
    labels = np.full(len(readable.values), -1, dtype=np.int64)
    for index, rule in reversed(list(enumerate(rules))):
        labels[selects(readable.values, rule.leaves)] = index
    return labels
