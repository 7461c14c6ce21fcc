"""How far could the default model's re-ranker go on a test month? Upper bounds, measured in one run.

The default model learns its trees from label windows *before* the cutoff. This benchmark asks what
it loses by that, and what it lacks, on the same evaluation protocol (`shopkeeper evaluate`):

1. **as shipped**: the default model, fitted on the data before the cutoff;
2. **trees trained on the test month itself**: the same candidates and the same features, but the
   trees learn from the test month's own purchases, cross-fitted over the test users (five folds,
   each scored by trees trained on the other four). This knows everything about the month (its
   season, its mix of customers) except the person being scored; if the default is far below it,
   better training windows or seasonality would help;
3. the same with **more trees** (120 instead of 40), or with the shipped model's own training rows
   (its replayed windows) added to the test month's;
4. the same with **information the protocol leaves out**: the quantities people bought (their mean
   and last quantity of the item, their total quantity) and their country, read from the CSV;
5. **the month's own best sellers (oracle)**: the shipped model's scores plus w x the test month's
   log-buyers of each item, w the best of four values chosen on the test month itself;
6. **ideal order of the candidates**: every target among the model's candidates ranked first (the
   limit of the candidate pool, not of any model).

Rows 2-6 look at the test month and are diagnostics only: nothing here tunes the default model.

    .venv/bin/python benchmarks/ceiling.py [--orders FILE] [--windows sep aug]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from shared_data import ONLINE_RETAIL

from shopkeeper.events.importers.online_retail import customer_id, keep_row, read_online_retail
from shopkeeper.recommend.base import FloatArray, History, IntArray
from shopkeeper.recommend.default import RerankRecommender, make_default
from shopkeeper.recommend.evaluation import Split, evaluate, temporal_split

DATA = ONLINE_RETAIL
WINDOWS = {
    "sep": ("2011-09-01", "2011-10-01", "Sep-2011 (goals table)"),
    "aug": ("2011-08-01", "2011-09-01", "Aug-2011"),
}

FOLDS = 5  # cross-fitting: each test user is scored by trees that never saw their month

Rows = list[tuple[IntArray, FloatArray]]  # per test user: candidates, feature rows


def _stamp(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


class Fixed:
    """A 'model' that returns precomputed scores for the split's histories (to reuse `evaluate`)."""

    name = "fixed"

    def __init__(self, histories: list[History], scores: list[FloatArray]) -> None:
        self._scores = {id(h): s for h, s in zip(histories, scores, strict=True)}

    def score(self, history: History, now: float) -> FloatArray:
        return self._scores[id(history)]


def _full(model: RerankRecommender, candidates: IntArray, raw: FloatArray) -> FloatArray:
    """Scores over the catalog as `RerankRecommender.score` builds them: candidates first."""
    scores: FloatArray = model.popularity_ + (float(raw.min()) - 2.0)
    scores[candidates] = raw
    return scores


def _cross_fitted(
    model: RerankRecommender,
    split: Split,
    rows: Rows,
    trees: int,
    before: tuple[FloatArray, FloatArray] | None = None,
) -> list[FloatArray]:
    """Each test user scored by trees learned from the other folds' purchases in the test month (and,
    with `before`, from the default's own training rows too)."""
    fold = np.random.default_rng(0).integers(0, FOLDS, len(rows))
    learner = RerankRecommender(**{**model.get_params(), "trees": trees})
    scores: list[FloatArray] = [np.zeros(0)] * len(rows)
    for side in range(FOLDS):
        train = [k for k in range(len(rows)) if fold[k] != side]
        features = np.vstack([rows[k][1] for k in train])
        labels = np.concatenate([np.isin(rows[k][0], split.targets[k]) for k in train]).astype(np.float64)
        if before is not None:
            features, labels = np.vstack([before[0], features]), np.concatenate([before[1], labels])
        ensemble = learner.fit_trees(features, labels)
        for k in np.flatnonzero(fold == side):
            candidates, table = rows[k]
            scores[k] = _full(model, candidates, ensemble.predict(table))
    return scores


def _side_information(path: Path, split: Split, rows: Rows) -> Rows:
    """Append quantity and country columns (from before the cutoff) to each user's feature rows."""
    users = {name: k for k, name in enumerate(split.train.user_ids)}
    items = {code: k for k, code in enumerate(split.train.item_ids)}
    total: dict[tuple[int, int], float] = {}
    lines: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], tuple[float, float]] = {}
    person_total: dict[int, float] = {}
    british: dict[int, float] = {}
    raw = path.read_bytes()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    reader = csv.DictReader(io.StringIO(text.decode("utf-8-sig")))
    for line in reader:
        who, code = customer_id(line["CustomerID"]), line["StockCode"].strip()
        if not keep_row(line["CustomerID"], line["Quantity"], line["InvoiceNo"], line["UnitPrice"], code):
            continue
        when = datetime.fromisoformat(line["InvoiceDate"].strip()).replace(tzinfo=UTC).timestamp()
        if when >= split.now or who not in users or code not in items:
            continue
        key, quantity = (users[who], items[code]), float(line["Quantity"])
        total[key] = total.get(key, 0.0) + quantity
        lines[key] = lines.get(key, 0) + 1
        if key not in last or last[key][0] <= when:
            last[key] = (when, quantity)
        person_total[key[0]] = person_total.get(key[0], 0.0) + quantity
        british[key[0]] = float(line["Country"].strip() == "United Kingdom")
    extended: Rows = []
    for user, (candidates, table) in zip(split.users.tolist(), rows, strict=True):
        extra = np.array(
            [
                [
                    total.get((user, item), 0.0) / max(lines.get((user, item), 1), 1),
                    last.get((user, item), (0.0, 0.0))[1],
                    total.get((user, item), 0.0),
                    person_total.get(user, 0.0),
                    british.get(user, 0.0),
                ]
                for item in candidates.tolist()
            ]
        ).reshape(len(candidates), 5)
        extended.append((candidates, np.hstack([table, extra])))
    return extended


def _oracle_best_sellers(split: Split, shipped: list[FloatArray], buyers: FloatArray) -> tuple[float, float]:
    """The best NDCG@10 (`all`, `new`) of the shipped scores plus w x the month's own log-buyers."""
    boost = np.log1p(buyers) / max(float(np.log1p(buyers).max()), 1e-9)
    best: dict[str, float] = {}
    for weight in (0.5, 1.0, 2.0, 4.0):
        result = evaluate(Fixed(split.histories, [s + weight * boost for s in shipped]), split)
        for task, metrics in result.items():
            best[task] = max(best.get(task, 0.0), metrics.ndcg_at_10)
    return best["all"], best["new"]


def _ideal(model: RerankRecommender, split: Split, rows: Rows) -> list[FloatArray]:
    return [
        _full(model, candidates, np.isin(candidates, wanted).astype(np.float64))
        for (candidates, _), wanted in zip(rows, split.targets, strict=True)
    ]


def measure(path: Path, cutoff: str, until: str) -> list[tuple[str, float, float]]:
    events = read_online_retail(path)
    split = temporal_split(events, _stamp(cutoff), _stamp(until))
    model = make_default()
    replayed = model.training_rows(split.train)
    model.fit(split.train)
    rows: Rows = [model.candidate_features(h, split.now) for h in split.histories]
    shipped = [model.score(h, split.now) for h in split.histories]
    in_test = (events.times >= _stamp(cutoff)) & (events.times < _stamp(until))
    width = len(events.items)
    pairs = np.unique(events.customer[in_test] * width + events.item[in_test])
    sold = np.bincount(pairs % width, minlength=width).astype(np.float64)
    code = {name: k for k, name in enumerate(events.items)}
    buyers = sold[np.array([code[name] for name in split.train.item_ids])]

    def ndcg(scores: list[FloatArray]) -> tuple[float, float]:
        result = evaluate(Fixed(split.histories, scores), split)
        return result["all"].ndcg_at_10, result["new"].ndcg_at_10

    plans: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        ("as shipped: trees learned before the cutoff", lambda: ndcg(shipped)),
        (
            "trees learned from the test month (cross-fitted)",
            lambda: ndcg(_cross_fitted(model, split, rows, 40)),
        ),
        ("  the same, 120 trees", lambda: ndcg(_cross_fitted(model, split, rows, 120))),
        (
            "  the same, + the shipped trees' own training rows",
            lambda: ndcg(_cross_fitted(model, split, rows, 40, replayed)),
        ),
        (
            "  the same, + quantities and country",
            lambda: ndcg(_cross_fitted(model, split, _side_information(path, split, rows), 40)),
        ),
        (
            "shipped + the month's own best sellers (oracle)",
            lambda: _oracle_best_sellers(split, shipped, buyers),
        ),
        ("ideal order of the model's candidates", lambda: ndcg(_ideal(model, split, rows))),
    ]
    return [(label, *plan()) for label, plan in plans]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=Path, default=DATA)
    parser.add_argument("--windows", nargs="+", choices=sorted(WINDOWS), default=["sep", "aug"])
    args = parser.parse_args()
    for name in args.windows:
        cutoff, until, label = WINDOWS[name]
        print(f"\n{label}: cutoff {cutoff}, until {until}; NDCG@10")
        print(f"{'re-ranker':52s} {'all':>7s} {'new':>7s}")
        for row, all_ndcg, new_ndcg in measure(args.orders, cutoff, until):
            print(f"{row:52s} {all_ndcg:7.4f} {new_ndcg:7.4f}")


if __name__ == "__main__":
    main()
