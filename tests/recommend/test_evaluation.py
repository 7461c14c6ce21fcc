"""The evaluation protocol on hand-computed cases: metrics, cleaning, the temporal split, the command."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from typer.testing import CliRunner

from shopkeeper.cli.main import app
from shopkeeper.events.importers.online_retail import keep_row, read_online_retail
from shopkeeper.recommend.base import History
from shopkeeper.recommend.evaluation import evaluate, ranking_metrics, temporal_split
from shopkeeper.recommend.trees import TreeEnsemble, from_histogram_boosting
from shopkeeper.store import Store

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = """\
536365,85123A,HEART,6,2011-01-05 08:00:00,2.55,17850.0,UK
536365,85123A,"HEART, AGAIN",2,2011-01-05 08:00:00,2.55,17850.0,UK
536366,71053,LANTERN,6,2011-01-10 08:00:00,3.39,17850.0,UK
C536367,71053,LANTERN,-1,2011-01-11 08:00:00,3.39,17850.0,UK
536368,POST,POSTAGE,1,2011-01-11 08:00:00,18.00,17850.0,UK
536369,22752,SET,0,2011-01-11 08:00:00,7.65,17850.0,UK
536370,22752,SET,2,2011-01-11 08:00:00,0.00,17850.0,UK
536371,22752,SET,2,2011-01-11 08:00:00,7.65,,UK
536372,22752,SET,2,2011-01-12 09:00:00,7.65,13047.0,UK
536380,85123A,HEART,1,2011-02-03 10:00:00,2.55,17850.0,UK
536381,22752,SET,1,2011-02-04 10:00:00,7.65,17850.0,UK
536382,99999,NEW THING,1,2011-02-04 10:00:00,1.00,17850.0,UK
536383,71053,LANTERN,1,2011-02-05 10:00:00,3.39,12000.0,UK
536384,22752,SET,1,2011-02-06 10:00:00,7.65,13047.0,UK
536390,71053,LANTERN,1,2011-03-06 10:00:00,3.39,17850.0,UK
"""


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ROWS)
    return path


def _stamp(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


def test_metrics_on_a_hand_computed_case() -> None:
    rankings = [np.array([3, 1, 2, *range(10, 27)]), np.array(range(30, 50))]
    targets = [np.array([1, 5]), np.array([49])]
    metrics = ranking_metrics(rankings, targets, n_items=100)
    first = (1 / np.log2(3)) / (1 + 1 / np.log2(3))  # one hit at rank 2 of an ideal two
    assert metrics.ndcg_at_10 == pytest.approx(first / 2)
    assert metrics.recall_at_20 == pytest.approx((1 / 2 + 1 / 1) / 2)  # user 2's hit is at rank 20
    assert metrics.hr_at_10 == pytest.approx(0.5)
    assert metrics.coverage_at_10 == pytest.approx(20 / 100)
    assert metrics.users == 2


def test_recall_divides_by_at_most_twenty() -> None:
    many = np.arange(100)
    metrics = ranking_metrics([np.arange(20)], [many], n_items=100)
    assert metrics.recall_at_20 == 1.0
    assert metrics.ndcg_at_10 == 1.0


@pytest.mark.parametrize(
    ("row", "kept"),
    [
        (("17850.0", "6", "536365", "2.55", "85123A"), True),
        (("", "6", "536365", "2.55", "85123A"), False),
        (("17850.0", "0", "536365", "2.55", "85123A"), False),
        (("17850.0", "-2", "536365", "2.55", "85123A"), False),
        (("17850.0", "6", "C536365", "2.55", "85123A"), False),
        (("17850.0", "6", "536365", "0", "85123A"), False),
        (("17850.0", "6", "536365", "2.55", "POST"), False),
        (("17850.0", "6", "536365", "2.55", "M"), False),
        (("17850.0", "six", "536365", "2.55", "85123A"), False),
    ],
)
def test_cleaning_rule(row: tuple[str, str, str, str, str], kept: bool) -> None:
    assert keep_row(*row) is kept


def test_reading_cleans_and_counts_distinct_invoices(orders_csv: Path) -> None:
    events = read_online_retail(orders_csv)
    assert events.rows_read == 15
    assert events.rows_kept == 15 - 5  # cancellation, POST, quantity 0, price 0, no customer
    assert len(events.times) == 9  # the duplicate line of invoice 536365 is one event
    assert sorted(events.customers) == ["12000", "13047", "17850"]


def test_temporal_split_follows_the_protocol(orders_csv: Path) -> None:
    events = read_online_retail(orders_csv)
    split = temporal_split(events, _stamp("2011-02-01"), _stamp("2011-03-01"))
    train = split.train
    assert sorted(train.user_ids) == ["13047", "17850"]
    assert sorted(train.item_ids) == ["22752", "71053", "85123A"]
    assert split.counts["test_users"] == 2  # 12000 never bought before; March is outside the window
    assert split.counts["test_users_new"] == 1  # 13047 only re-bought
    targets = {
        train.user_ids[user]: sorted(train.item_ids[i] for i in found)
        for user, found in zip(np.unique(train.user_idx), split.targets, strict=True)
    }
    assert targets == {"13047": ["22752"], "17850": ["22752", "85123A"]}  # 99999 is unknown to train
    sizes = {
        train.user_ids[u]: len(h) for u, h in zip(np.unique(train.user_idx), split.histories, strict=True)
    }
    assert sizes == {"13047": 1, "17850": 2}


def test_evaluate_removes_owned_items_for_the_new_task(orders_csv: Path) -> None:
    events = read_online_retail(orders_csv)
    split = temporal_split(events, _stamp("2011-02-01"), _stamp("2011-03-01"))

    class Owned:
        """Scores owned items highest: perfect on `all` here, and must not help on `new`."""

        name = "owned"

        def score(self, history: History, now: float) -> np.ndarray:
            scores = np.zeros(3)
            scores[history.item_idx] = 1.0
            return scores

    results = evaluate(Owned(), split)  # type: ignore[arg-type]
    assert results["new"].users == 1
    assert results["new"].hr_at_10 == 1.0  # 22752 is the only candidate left for 17850
    assert results["all"].users == 2


def test_trees_exported_as_arrays_score_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 6))
    labels = features[:, 0] + features[:, 1] * features[:, 2] + rng.normal(size=2000) > 0
    booster = HistGradientBoostingClassifier(max_iter=30, max_depth=4, random_state=0).fit(features, labels)
    trees = from_histogram_boosting(booster)
    np.testing.assert_allclose(trees.predict(features), booster.decision_function(features), atol=1e-9)
    again = TreeEnsemble.from_arrays(trees.arrays("t_"), "t_")
    np.testing.assert_array_equal(again.predict(features), trees.predict(features))


def test_evaluate_command_json(orders_csv: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--orders",
            str(orders_csv),
            "--cutoff",
            "2011-02-01",
            "--until",
            "2011-02-28",
            "--no-default",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"]["test_users"] == 2
    assert report["split"]["until"] == "2011-02-28"
    models = {(r["model"], r["task"]) for r in report["results"]}
    assert len(models) == 8 * 2 + 2
    for row in report["results"]:
        assert set(row) >= {
            "model",
            "task",
            "ndcg_at_10",
            "recall_at_20",
            "hr_at_10",
            "coverage_at_10",
            "fit_seconds",
            "default",
        }
        assert 0.0 <= row["ndcg_at_10"] <= 1.0


def test_evaluate_command_rejects_a_bad_date(orders_csv: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--orders", str(orders_csv), "--cutoff", "Feb 2011"])
    assert result.exit_code != 0


def test_evaluate_command_reads_the_shops_own_purchases(orders_csv: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    imported = CliRunner().invoke(app, ["import", "orders", str(orders_csv), "--db", url])
    assert imported.exit_code == 0, imported.output
    args = ["evaluate", "--cutoff", "2011-02-01", "--until", "2011-02-28", "--no-default", "--json"]
    from_file = json.loads(CliRunner().invoke(app, [*args, "--orders", str(orders_csv)]).stdout)
    result = CliRunner().invoke(app, [*args, "--db", url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"]["source"] == "database" and from_file["split"]["source"] == "file"
    # The same people are tested (those who bought before and during February), named by number only.
    assert report["split"]["test_users"] == from_file["split"]["test_users"] == 2
    assert "17850" not in result.stdout
    assert {(r["model"], r["task"]) for r in report["results"]} == {
        (r["model"], r["task"]) for r in from_file["results"]
    }
    # Kept in the shop, whole, for the dashboard's chart (the file's evaluation is not the shop's).
    with closing(Store.open(url)) as store:
        kept = store.evaluations.latest()
    assert kept is not None and kept.report == report


def test_evaluate_command_takes_one_source(orders_csv: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--orders",
            str(orders_csv),
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--cutoff",
            "2011-02-01",
        ],
    )
    assert result.exit_code != 0
    assert "give --orders FILE or --db URL, not both" in str(result.exception)
