"""Honest offline evaluation (issue 4's protocol): a global temporal split, anchors tuned on validation.

Pure: order events in, metrics out. The protocol:
- train is everything before the cutoff; the test window runs from the cutoff to `until`;
- test users bought in both; their targets are the distinct train-known items bought in the window;
- task `all` ranks every train item; task `new` removes each user's train items from both the
  candidates and the targets (users left with no target are dropped);
- hyperparameters are chosen on a validation split inside train (its last 30 days), never on test;
- metrics: NDCG@10, Recall@20 (hits / min(20, |targets|)), HR@10, and catalog coverage@10.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopkeeper.recommend.base import History, IntArray, Interactions, Recommender, top_n
from shopkeeper.recommend.orders import OrderEvents
from shopkeeper.recommend.signals import DAY

TASKS = ("all", "new")
VALIDATION_DAYS = 30.0


@dataclass(frozen=True)
class Split:
    """A train window, and the test users' histories (from train) and targets (from the test window).

    `users[k]` is the train `user_idx` of `histories[k]` and `targets[k]`."""

    train: Interactions
    now: float
    histories: list[History]
    targets: list[IntArray]
    counts: dict[str, int]
    users: IntArray


@dataclass(frozen=True)
class Metrics:
    ndcg_at_10: float
    recall_at_20: float
    hr_at_10: float
    coverage_at_10: float
    users: int


def temporal_split(events: OrderEvents, cutoff: float, until: float | None = None) -> Split:
    """Train on events before `cutoff`; test on `[cutoff, until)` (to the end when `until` is None)."""
    in_train = events.times < cutoff
    in_test = (events.times >= cutoff) & (events.times < (np.inf if until is None else until))
    users, user_idx = np.unique(events.customer[in_train], return_inverse=True)
    items, item_idx = np.unique(events.item[in_train], return_inverse=True)
    order = np.lexsort((events.times[in_train], user_idx))
    n = int(in_train.sum())
    train = Interactions(
        user_idx=user_idx[order].astype(np.int64),
        item_idx=item_idx[order].astype(np.int64),
        times=events.times[in_train][order],
        weights=np.ones(n),
        kinds=np.zeros(n, np.int64),
        user_ids=[events.customers[u] for u in users],
        item_ids=[events.items[i] for i in items],
    )
    test_user = np.searchsorted(users, events.customer[in_test])
    test_item = np.searchsorted(items, events.item[in_test])
    known = (test_user < len(users)) & (test_item < len(items))
    known[known] &= users[test_user[known]] == events.customer[in_test][known]
    known[known] &= items[test_item[known]] == events.item[in_test][known]
    pairs = np.unique(test_user[known] * max(len(items), 1) + test_item[known])
    pair_user, pair_item = pairs // max(len(items), 1), pairs % max(len(items), 1)
    test_users, starts = np.unique(pair_user, return_index=True)
    bounds = [*starts.tolist(), len(pairs)]
    targets = [pair_item[bounds[k] : bounds[k + 1]].astype(np.int64) for k in range(len(test_users))]
    user_starts = np.searchsorted(train.user_idx, np.arange(len(users) + 1))
    histories = [
        History(
            train.item_idx[user_starts[u] : user_starts[u + 1]],
            train.times[user_starts[u] : user_starts[u + 1]],
            train.weights[user_starts[u] : user_starts[u + 1]],
            train.kinds[user_starts[u] : user_starts[u + 1]],
        )
        for u in test_users
    ]
    buyers_in_test = np.unique(events.customer[in_test])
    counts = {
        "train_events": n,
        "train_users": len(users),
        "train_items": len(items),
        "test_events": int(in_test.sum()),
        "test_buyers": len(buyers_in_test),
        "test_users": len(test_users),
        "test_users_new": sum(1 for h, t in zip(histories, targets, strict=True) if _new(t, h).size),
    }
    return Split(train, cutoff, histories, targets, counts, test_users.astype(np.int64))


def validation_split(events: OrderEvents, cutoff: float, days: float = VALIDATION_DAYS) -> Split:
    """The same protocol inside train: its last `days` before the cutoff are the validation window."""
    return temporal_split(events, cutoff - days * DAY, cutoff)


def _new(targets: IntArray, history: History) -> IntArray:
    return np.setdiff1d(targets, history.purchases().item_idx)


def ranking_metrics(rankings: Sequence[IntArray], targets: Sequence[IntArray], n_items: int) -> Metrics:
    """The protocol's metrics over users, given each user's ranked list (20 long, or the whole catalog)."""
    discounts = 1.0 / np.log2(np.arange(2, 22))
    ndcg, recall, hits, shown = [], [], [], set()
    for ranked, wanted in zip(rankings, targets, strict=True):
        hit = np.isin(ranked[:20], wanted)
        ideal = discounts[: min(10, len(wanted))].sum()
        top = hit[:10]
        ndcg.append(float(discounts[: len(top)][top].sum() / ideal) if ideal > 0 else 0.0)
        recall.append(hit.sum() / min(20, len(wanted)) if len(wanted) else 0.0)
        hits.append(float(hit[:10].any()))
        shown.update(ranked[:10].tolist())
    users = len(ndcg)
    return Metrics(
        ndcg_at_10=float(np.mean(ndcg)) if users else 0.0,
        recall_at_20=float(np.mean(recall)) if users else 0.0,
        hr_at_10=float(np.mean(hits)) if users else 0.0,
        coverage_at_10=len(shown) / n_items if n_items else 0.0,
        users=users,
    )


def evaluate(model: Recommender, split: Split, tasks: Sequence[str] = TASKS) -> dict[str, Metrics]:
    """Score each test user once from their train history, then rank for each task."""
    rankings: dict[str, list[IntArray]] = {task: [] for task in tasks}
    wanted: dict[str, list[IntArray]] = {task: [] for task in tasks}
    for history, targets in zip(split.histories, split.targets, strict=True):
        scores = model.score(history, split.now)
        if "all" in tasks:
            rankings["all"].append(top_n(scores, 20)[0])
            wanted["all"].append(targets)
        if "new" in tasks:
            fresh = _new(targets, history)
            if len(fresh):
                owned = np.unique(history.purchases().item_idx)
                rankings["new"].append(top_n(scores, 20, exclude=owned)[0])
                wanted["new"].append(fresh)
    n_items = split.train.n_items
    return {task: ranking_metrics(rankings[task], wanted[task], n_items) for task in tasks}


Factory = Callable[..., Recommender]


@dataclass
class Tuned:
    """The best settings per task on validation, and their validation metrics."""

    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation: dict[str, Metrics] = field(default_factory=dict)
    models: dict[str, Recommender] = field(default_factory=dict)


def tune(factory: Factory, grid: Sequence[dict[str, Any]], validation: Split) -> Tuned:
    """Fit every grid point on the validation train and keep the best NDCG@10 per task.

    With no validation data (a file too short for it) the grid's first settings stand, scored 0.
    """
    tuned = Tuned()
    if not validation.targets or not validation.train.n_items:
        empty = Metrics(0.0, 0.0, 0.0, 0.0, 0)
        for task in TASKS:
            tuned.params[task], tuned.validation[task] = grid[0], empty
        return tuned
    for params in grid:
        model = factory(**params).fit(validation.train)
        for task, metrics in evaluate(model, validation).items():
            best = tuned.validation.get(task)
            if best is None or metrics.ndcg_at_10 > best.ndcg_at_10:
                tuned.params[task], tuned.validation[task], tuned.models[task] = params, metrics, model
    return tuned


def fit_timed(model: Recommender, interactions: Interactions) -> tuple[Recommender, float]:
    start = time.perf_counter()
    model.fit(interactions)
    return model, time.perf_counter() - start


def result_row(
    model: str, task: str, metrics: Metrics, fit_seconds: float, *, default: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "model": model,
        "task": task,
        "ndcg_at_10": round(metrics.ndcg_at_10, 4),
        "recall_at_20": round(metrics.recall_at_20, 4),
        "hr_at_10": round(metrics.hr_at_10, 4),
        "coverage_at_10": round(metrics.coverage_at_10, 4),
        "fit_seconds": round(fit_seconds, 2),
        "default": default,
        "users": metrics.users,
        **extra,
    }
