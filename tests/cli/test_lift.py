"""`shopkeeper lift`: the JSON contract, known effects, CUPED, a real CSV, and every user mistake."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep
from tests.cli.in_process import run_main

SHOPPERS = (
    Path(__file__).parent.parent.parent.parent
    / "shared"
    / "data"
    / "online-shoppers-intention"
    / "online_shoppers_intention.csv"
)
CONTRACT_KEYS = {
    "metric",
    "control",
    "treatment",
    "diff",
    "ci_low",
    "ci_high",
    "rel_lift",
    "verdict",
    "summary",
}


def run_lift(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `shopkeeper lift ARGS` in this process through the same entry point as the command."""
    return run_main(capsys, "lift", *args)


def write_synthetic(path: Path, n: int = 20_000, seed: int = 11) -> dict[str, np.ndarray]:
    """Three arms: B converts 12% instead of 10% and spends 10% more; C is the same as A."""
    rng = np.random.default_rng(seed)
    arms = np.repeat(np.array(["A", "B", "C"]), n)
    rate = np.where(arms == "B", 0.12, 0.10)
    converted = (rng.random(3 * n) < rate).astype(int)
    pre_spend = rng.gamma(2.0, 20.0, 3 * n)
    spend = 0.8 * pre_spend + rng.normal(0, 10, 3 * n) + np.where(arms == "B", 4.0, 0.0)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["person", "group", "converted", "spend", "pre_spend"])
        for i in range(3 * n):
            writer.writerow([f"p{i}", arms[i], converted[i], f"{spend[i]:.4f}", f"{pre_spend[i]:.4f}"])
    return {"arm": arms, "converted": converted, "spend": np.round(spend, 4), "pre": np.round(pre_spend, 4)}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("lift") / "campaign.csv"
    return path, write_synthetic(path)


def test_json_contract_and_known_effects(
    capsys: pytest.CaptureFixture[str], synthetic: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, data = synthetic
    code, out, err = run_lift(
        capsys,
        str(path),
        "--arm",
        "group",
        "--control",
        "A",
        "--metric",
        "converted",
        "--metric",
        "spend",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert [a["arm"] for a in report["arms"]] == ["B", "C"]
    assert [a["n"] for a in report["arms"]] == [20_000, 20_000]
    for arm in report["arms"]:
        assert [m["metric"] for m in arm["metrics"]] == ["converted", "spend"]
        for m in arm["metrics"]:
            assert set(m) >= CONTRACT_KEYS
            assert m["verdict"] in {"win", "loss", "inconclusive"}
            assert m["diff"] == pytest.approx(m["treatment"] - m["control"])
            assert m["ci_low"] < m["diff"] < m["ci_high"]
            assert m["summary"].endswith(".") and "\n" not in m["summary"]
    b_conv, b_spend = report["arms"][0]["metrics"]
    c_conv, c_spend = report["arms"][1]["metrics"]
    # B: +2 points of conversion and +4 of spend, both found and both inside their intervals.
    assert b_conv["verdict"] == "win" and b_conv["kind"] == "proportion" and b_conv["method"] == "newcombe"
    assert b_conv["ci_low"] < 0.02 < b_conv["ci_high"]
    assert b_spend["verdict"] == "win" and b_spend["kind"] == "mean" and b_spend["method"] == "welch"
    assert b_spend["ci_low"] < 4.0 < b_spend["ci_high"]
    assert b_conv["summary"].startswith("B beats A on converted by ")
    # C: no effect; intervals cover zero, nothing is claimed.
    assert c_conv["verdict"] == "inconclusive" and c_spend["verdict"] == "inconclusive"
    assert "need about" in c_conv["summary"] or "no difference" in c_conv["summary"]
    # The same numbers as statsmodels and scipy on the same data.
    a, b = data["arm"] == "A", data["arm"] == "B"
    low, high = confint_proportions_2indep(
        int(data["converted"][b].sum()),
        int(b.sum()),
        int(data["converted"][a].sum()),
        int(a.sum()),
        method="newcomb",
    )
    assert (b_conv["ci_low"], b_conv["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    welch = stats.ttest_ind(data["spend"][b], data["spend"][a], equal_var=False).confidence_interval()
    assert (b_spend["ci_low"], b_spend["ci_high"]) == pytest.approx((welch.low, welch.high), rel=1e-9)
    assert report["srm"]["mismatch"] is False
    assert report["control"] == {"arm": "A", "n": 20_000}


def test_cuped_narrows_the_interval(
    capsys: pytest.CaptureFixture[str], synthetic: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = synthetic
    base = [str(path), "--arm", "group", "--control", "A", "--metric", "spend", "--json"]
    plain = json.loads(run_lift(capsys, *base)[1])["arms"][0]["metrics"][0]
    code, out, err = run_lift(capsys, *base, "--pre", "pre_spend")
    assert code == 0, err
    adjusted = json.loads(out)["arms"][0]["metrics"][0]
    assert adjusted["method"] == "cuped-welch"
    assert adjusted["cuped"]["variance_reduction"] > 0.5
    assert adjusted["cuped"]["theta"] == pytest.approx(0.8, abs=0.02)
    assert adjusted["ci_high"] - adjusted["ci_low"] < 0.7 * (plain["ci_high"] - plain["ci_low"])
    assert adjusted["ci_low"] < 4.0 < adjusted["ci_high"]
    assert adjusted["diff"] == pytest.approx(adjusted["treatment"] - adjusted["control"])
    assert adjusted["control_raw"] == pytest.approx(plain["control"])


def test_daily_traffic_turns_people_into_days(
    capsys: pytest.CaptureFixture[str], synthetic: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = synthetic
    args = [str(path), "--arm", "group", "--control", "A", "--metric", "converted", "--json"]
    code, out, err = run_lift(capsys, *args, "--daily-traffic", "1000")
    assert code == 0, err
    c = json.loads(out)["arms"][1]["metrics"][0]
    assert c["verdict"] == "inconclusive" and c["more_people"] > 0
    assert c["more_days"] == -(-c["more_people"] // 1000)
    assert f"(about {c['more_days']:,} more days at 1,000 a day)" in c["summary"]


def test_human_table(
    capsys: pytest.CaptureFixture[str], synthetic: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = synthetic
    code, out, _ = run_lift(capsys, str(path), "--arm", "group", "--control", "A", "--metric", "converted")
    assert code == 0
    assert "Control: group = A (20,000 rows)" in out
    assert "- B beats A on converted by" in out
    assert "- C is not distinguishable from A on converted yet" in out
    assert "Sample ratio check passed" in out


def test_intended_weights_feed_the_sample_ratio_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "split.csv"
    rows = ["arm,y"] + ["ctl,1", "ctl,0"] * 450 + ["new,1", "new,0"] * 50
    path.write_text("\n".join(rows) + "\n")
    args = [str(path), "--arm", "arm", "--control", "ctl", "--metric", "y", "--json"]
    assert json.loads(run_lift(capsys, *args)[1])["srm"]["mismatch"] is True
    report = json.loads(run_lift(capsys, *args, "--weight", "ctl=90", "--weight", "new=10")[1])
    assert report["srm"]["mismatch"] is False
    assert report["srm"]["expected"] == {"ctl": 900.0, "new": 100.0}


def test_real_data_online_shoppers(capsys: pytest.CaptureFixture[str]) -> None:
    """Observational, not randomized: weekend sessions against weekday ones (the SRM check says so)."""
    if not SHOPPERS.exists():
        pytest.skip(f"{SHOPPERS} is not there")
    with SHOPPERS.open(newline="") as source:
        rows = list(csv.DictReader(source))
    weekend = [r["Revenue"] == "TRUE" for r in rows if r["Weekend"] == "TRUE"]
    weekday = [r["Revenue"] == "TRUE" for r in rows if r["Weekend"] == "FALSE"]
    assert (len(rows), len(weekend), sum(weekend) + sum(weekday)) == (12_330, 2_868, 1_908)
    code, out, err = run_lift(
        capsys, str(SHOPPERS), "--arm", "Weekend", "--control", "FALSE", "--metric", "Revenue", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    arm = report["arms"][0]
    metric = arm["metrics"][0]
    assert (arm["arm"], arm["n"], report["control"]["n"]) == ("TRUE", 2_868, 9_462)
    assert metric["kind"] == "proportion"
    assert metric["control"] == pytest.approx(sum(weekday) / len(weekday))
    low, high = confint_proportions_2indep(
        sum(weekend), len(weekend), sum(weekday), len(weekday), method="newcomb"
    )
    assert (metric["ci_low"], metric["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    assert report["srm"]["mismatch"] is True
    code, out, err = run_lift(
        capsys,
        str(SHOPPERS),
        "--arm",
        "VisitorType",
        "--control",
        "Returning_Visitor",
        "--metric",
        "Revenue",
        "--pre",
        "PageValues",
        "--json",
    )
    assert code == 0, err
    arms = json.loads(out)["arms"]
    assert [(a["arm"], a["n"]) for a in arms] == [("New_Visitor", 1_694), ("Other", 85)]
    assert all(a["metrics"][0]["method"] == "cuped-welch" for a in arms)


def test_semicolons_and_gzip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    lines = ["\ufeffarm;revenue"] + [f"a;{i % 7}" for i in range(50)] + [f"b;{i % 9}" for i in range(50)]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    code, out, err = run_lift(
        capsys, str(path), "--arm", "arm", "--control", "a", "--metric", "revenue", "--json"
    )
    assert code == 0, err
    metric = json.loads(out)["arms"][0]["metrics"][0]
    assert metric["control"] == pytest.approx(np.mean([i % 7 for i in range(50)]))
    assert metric["kind"] == "mean"


BAD_INPUTS = [
    ("missing.csv", None, ["--arm", "g", "--control", "a", "--metric", "y"], "no such file"),
    ("empty.csv", "", ["--arm", "g", "--control", "a", "--metric", "y"], "is empty"),
    ("header.csv", "g,y\n", ["--arm", "g", "--control", "a", "--metric", "y"], "has a header but no rows"),
    (
        "col.csv",
        "g,y\na,1\nb,0\n",
        ["--arm", "group", "--control", "a", "--metric", "y"],
        "no column 'group'",
    ),
    ("metric.csv", "g,y\na,1\nb,0\n", ["--arm", "g", "--control", "a", "--metric", "z"], "no column 'z'"),
    (
        "text.csv",
        "g,y\na,1\na,2\nb,x\nb,3\n",
        ["--arm", "g", "--control", "a", "--metric", "y"],
        "must be numeric",
    ),
    (
        "blank.csv",
        "g,y\na,1\na,\nb,1\nb,3\n",
        ["--arm", "g", "--control", "a", "--metric", "y"],
        "empty value",
    ),
    ("nan.csv", "g,y\na,1\na,nan\nb,1\nb,3\n", ["--arm", "g", "--control", "a", "--metric", "y"], "'nan'"),
    ("ctl.csv", "g,y\na,1\nb,0\n", ["--arm", "g", "--control", "c", "--metric", "y"], "no row has g = 'c'"),
    ("one.csv", "g,y\na,1\na,0\n", ["--arm", "g", "--control", "a", "--metric", "y"], "nothing to compare"),
    ("tiny.csv", "g,y\na,1\na,0\nb,1\n", ["--arm", "g", "--control", "a", "--metric", "y"], "fewer than 2"),
    ("short.csv", "g,y\na,1\na\n", ["--arm", "g", "--control", "a", "--metric", "y"], "line 3"),
    (
        "weight.csv",
        "g,y\na,1\na,0\nb,1\nb,0\n",
        ["--arm", "g", "--control", "a", "--metric", "y", "--weight", "a=1"],
        "missing: b",
    ),
    (
        "latin.csv",
        b"g,y\n\xe9,1\n",
        ["--arm", "g", "--control", "a", "--metric", "y"],
        "not UTF-8 text",  # the one CSV reader's words (events/importers/source.py)
    ),
]


@pytest.mark.parametrize(("name", "content", "args", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: str | bytes | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = run_lift(capsys, str(path), *args, "--json")
    assert code == 1
    assert out == ""
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_a_real_process_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("g,y\na,1\nb,oops\n")
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shopkeeper",
            "lift",
            str(path),
            "--arm",
            "g",
            "--control",
            "a",
            "--metric",
            "y",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: column 'y' must be numeric (or TRUE/FALSE), but line 3 has 'oops'"
    assert done.stdout == ""
