"""`shopkeeper experiments create|list|stop|report`: the --json shapes, and every mistake as one line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from tests.cli.in_process import run_main
from tests.cli.test_lift import CONTRACT_KEYS

from shopkeeper.store import Store
from shopkeeper.store.schema import decisions


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `shopkeeper experiments ARGS` in this process through the command's entry point."""
    return run_main(capsys, "experiments", *args)


def expose(url: str, experiment: str, arms: list[str], per_arm: int) -> None:
    store = Store.open(url)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "decision_id": str(uuid.uuid4()),
            "person_id": i * 10 + a,
            "external_id": f"p{i}-{a}",
            "placement": "web",
            "model_version": None,
            "personalized": 0,
            "items": "[]",
            "reasons": "[]",
            "at": at + timedelta(minutes=i),
            "unit": f"p{i}-{a}",
            "cohort": "personalized",
            "experiment": experiment,
            "arm": arm,
            "propensity": 1 / len(arms),
        }
        for a, arm in enumerate(arms)
        for i in range(per_arm)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(decisions), rows)
    store.close()


def test_create_list_report_and_stop_with_json(capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    code, out, err = run(
        capsys,
        "create",
        "picks",
        "--placement",
        "web",
        "--variant",
        "personalized=",
        "--variant",
        'baseline={"model": "popularity"}',
        "--weights",
        "60,40",
        "--audience",
        '{"trait": "order_count", "gte": 1}',
        "--event",
        "Review Written",
        "--window-days",
        "10",
        "--db",
        sqlite_url,
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["weights"] == [60.0, 40.0] and created["audience"] == {"trait": "order_count", "gte": 1}
    assert [v["name"] for v in created["variants"]] == ["personalized", "baseline"]
    code, out, _ = run(capsys, "list", "--db", sqlite_url, "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)["experiments"]] == ["picks"]
    expose(sqlite_url, "picks", ["personalized", "baseline"], 30)
    code, out, err = run(capsys, "report", "picks", "--db", sqlite_url, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["name"] == "picks" and report["window_days"] == 10 and report["people"] == 60
    assert [a["arm"] for a in report["arms"]] == ["personalized", "baseline"]
    metric = report["arms"][1]["metrics"][0]
    assert set(metric) >= CONTRACT_KEYS
    assert report["srm"]["checked"] and report["reach"]["people"] == 0
    code, out, _ = run(capsys, "report", "picks", "--db", sqlite_url)
    assert code == 0 and "personalized (control)" in out and "sample ratio" in out
    code, out, _ = run(capsys, "report", "holdout", "--db", sqlite_url, "--json")
    assert code == 0 and json.loads(out)["kind"] == "holdout"
    code, out, _ = run(capsys, "stop", "picks", "--db", sqlite_url)
    assert code == 0 and "Stopped picks" in out
    code, out, _ = run(capsys, "list", "--db", sqlite_url)
    assert code == 0 and "stopped" in out and "holdout: 5.0%" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["create", "x", "--placement", "web", "--variant", "a=", "--variant", "b={oops"], "must be JSON"),
        (["create", "x", "--placement", "web", "--variant", "a="], "at least two variants"),
        (
            ["create", "x", "--placement", "nowhere", "--variant", "a=", "--variant", "b="],
            "unknown placement",
        ),
        (
            ["create", "x", "--placement", "web", "--variant", "a=", "--variant", "b=", "--weights", "1,z"],
            "--weights",
        ),
        (
            ["create", "x", "--placement", "web", "--variant", "a=", "--variant", "b=", "--audience", "{"],
            "--audience",
        ),
        (["create", "x", "--placement", "web", "--variant", "a=", "--variant", 'b={"n": 99}'], "1 to 50"),
        (["report", "nope"], "no experiment named 'nope'"),
        (["stop", "nope"], "no experiment named 'nope'"),
        (["report", "holdout", "--window-days", "0"], "1 to 365"),
    ],
)
def test_every_mistake_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, args: list[str], words: str
) -> None:
    code, out, err = run(capsys, *args, "--db", sqlite_url)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and words in err and err.count("\n") == 1
    assert "Traceback" not in err
