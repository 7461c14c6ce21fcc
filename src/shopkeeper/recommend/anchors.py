"""The anchors of issue 4, each tuned on validation the same way, and the full side-by-side run."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopkeeper.recommend.als import ALSRecommender
from shopkeeper.recommend.base import Recommender
from shopkeeper.recommend.baselines import PopularityRecommender, RepeatRecommender
from shopkeeper.recommend.blend import BlendRecommender
from shopkeeper.recommend.ease import EASERecommender
from shopkeeper.recommend.evaluation import (
    TASKS,
    Factory,
    Split,
    Tuned,
    evaluate,
    fit_timed,
    result_row,
    temporal_split,
    tune,
    validation_split,
)
from shopkeeper.recommend.neighbors import (
    BM25Recommender,
    CooccurrenceRecommender,
    ItemKNNRecommender,
    RP3betaRecommender,
)
from shopkeeper.recommend.orders import OrderEvents


def _grid(**axes: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


@dataclass(frozen=True)
class Anchor:
    label: str
    factory: Factory
    grid: list[dict[str, Any]]


ANCHORS: tuple[Anchor, ...] = (
    Anchor("popularity", PopularityRecommender, _grid(window_days=[7.0, 30.0, 90.0, None])),
    Anchor("repeat purchase", RepeatRecommender, _grid(half_life_days=[14.0, 60.0, 180.0, None])),
    Anchor("ItemKNN (cosine)", ItemKNNRecommender, _grid(k=[50, 200], shrink=[0.0, 20.0])),
    Anchor("BM25 item-kNN (implicit)", BM25Recommender, _grid(k=[50, 200], b=[0.25, 0.75])),
    Anchor(
        "time-decayed co-occurrence",
        CooccurrenceRecommender,
        _grid(half_life_days=[90.0, None], beta=[0.0, 0.5], person_half_life_days=[30.0, 180.0]),
    ),
    Anchor("EASE", EASERecommender, _grid(l2=[100.0, 300.0, 1000.0, 3000.0])),
    Anchor("RP3beta", RP3betaRecommender, _grid(alpha=[0.5, 1.0], beta=[0.3, 0.6])),
    Anchor("ALS (implicit)", ALSRecommender, _grid(regularization=[0.05, 5.0], alpha=[2.0, 20.0])),
)

Progress = Callable[[str], None]


def _final(
    label: str,
    factory: Factory,
    tuned: Tuned,
    split: Split,
    rows: list[dict[str, Any]],
    tasks: tuple[str, ...],
) -> dict[str, Recommender]:
    """Refit the validation winner of each task on the whole train window and score the test window."""
    fitted: dict[str, Recommender] = {}
    cache: dict[str, tuple[Recommender, float]] = {}
    for task in tasks:
        key = repr(sorted(tuned.params[task].items()))
        if key not in cache:
            cache[key] = fit_timed(factory(**tuned.params[task]), split.train)
        model, seconds = cache[key]
        metrics = evaluate(model, split, (task,))[task]
        rows.append(
            result_row(
                label,
                task,
                metrics,
                seconds,
                params=tuned.params[task],
                validation_ndcg_at_10=round(tuned.validation[task].ndcg_at_10, 4),
            )
        )
        fitted[task] = model
    return fitted


def _fitted_blend(parts: list[Recommender], weights: list[float]) -> BlendRecommender:
    return BlendRecommender(parts, weights)


def run_protocol(
    events: OrderEvents,
    cutoff: float,
    until: float | None = None,
    *,
    default_factory: Factory | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every anchor and blend (tuned on validation), plus the default model, on one temporal split."""
    say = progress or (lambda _: None)
    split = temporal_split(events, cutoff, until)
    validation = validation_split(events, cutoff)
    rows: list[dict[str, Any]] = []
    tuned: dict[str, Tuned] = {}
    for anchor in ANCHORS:
        say(f"tuning {anchor.label} on validation ({len(anchor.grid)} settings)")
        tuned[anchor.label] = tune(anchor.factory, anchor.grid, validation)
        say(f"testing {anchor.label}")
        _final(anchor.label, anchor.factory, tuned[anchor.label], split, rows, TASKS)

    say("tuning the simple blends on validation")
    _blends(tuned, validation, split, rows)

    if default_factory is not None:
        say("fitting the default model")
        model, seconds = fit_timed(default_factory(), split.train)
        for task, metrics in evaluate(model, split).items():
            rows.append(result_row(model.name, task, metrics, seconds, default=True))
    counts = {
        **split.counts,
        "cutoff": cutoff,
        "until": until,
        "validation_cutoff": validation.now,
        "validation_users": validation.counts["test_users"],
        "validation_users_new": validation.counts["test_users_new"],
    }
    return {"split": counts, "results": rows}


def _blends(tuned: dict[str, Tuned], validation: Split, split: Split, rows: list[dict[str, Any]]) -> None:
    """repeat + a·EASE + b·popularity for `all`; EASE + b·(7-day popularity) for `new`."""
    plans: dict[str, tuple[str, list[Factory], list[dict[str, Any]], list[list[float]]]] = {
        "all": (
            "blend: repeat + a·EASE + b·popularity",
            [RepeatRecommender, EASERecommender, PopularityRecommender],
            [
                tuned["repeat purchase"].params["all"],
                tuned["EASE"].params["all"],
                tuned["popularity"].params["all"],
            ],
            [[1.0, a, b] for a in (0.0, 0.05, 0.1, 0.2, 0.5) for b in (0.0, 0.02, 0.05, 0.1, 0.3)],
        ),
        "new": (
            "blend: EASE + b·7-day popularity",
            [EASERecommender, PopularityRecommender],
            [tuned["EASE"].params["new"], {"window_days": 7.0}],
            [[1.0, b] for b in (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)],
        ),
    }
    for task, (label, factories, params, weight_grid) in plans.items():
        usable = bool(validation.targets) and validation.train.n_items > 0
        parts = (
            [f(**p).fit(validation.train) for f, p in zip(factories, params, strict=True)] if usable else []
        )
        best_weights, best_ndcg = weight_grid[0], -1.0
        for weights in weight_grid if usable else []:
            ndcg = evaluate(_fitted_blend(parts, weights), validation, (task,))[task].ndcg_at_10
            if ndcg > best_ndcg:
                best_weights, best_ndcg = weights, ndcg
        final = BlendRecommender([f(**p) for f, p in zip(factories, params, strict=True)], best_weights)
        model, seconds = fit_timed(final, split.train)
        metrics = evaluate(model, split, (task,))[task]
        rows.append(
            result_row(
                label,
                task,
                metrics,
                seconds,
                params={"weights": best_weights},
                validation_ndcg_at_10=round(best_ndcg, 4),
            )
        )
