"""`shopkeeper import items FILE` as a user runs it: a real process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shopkeeper.store import Store

CATALOG_CSV = """\
item_id,title,category,price,currency,brand,variant_id,size,colour,stock,variant_price
85123A,White hanging heart T-light holder,Home > Candles,2.55,GBP,Acme,,,,,
TEE,Café T-shirt ☕,Clothes > T-shirts,20,GBP,,TEE-S,S,grey,3,
TEE,,,,,,TEE-M,M,grey,0,22.5
BAD,Negative price,,-1,GBP,,,,,,
HAT,Hat,,5,GBP,,HAT-1,,,-2,
HAT,Hat,,5,GBP,,HAT-2,,,1,
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SHOPKEEPER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", "import", "items", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def run_json(*args: str) -> dict[str, Any]:
    done = run(*args, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_csv_import_reports_bad_lines_and_a_second_run_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "catalog.csv", CATALOG_CSV)
    first = run_json(str(path), "--db", database_url)
    assert {k: first[k] for k in ("format", "lines_read", "items", "created", "updated", "unchanged")} == {
        "format": "csv",
        "lines_read": 6,
        "items": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert first["skipped"] == [
        {"line": 5, "reason": "price: must be at least 0"},
        {"line": 6, "reason": "stock: must be at least 0"},
        {"line": 7, "reason": "item 'HAT' is skipped because line 6 is bad"},
    ]
    store = Store.open(database_url)
    try:
        tee = store.catalog.get("TEE")
        assert (tee.title, tee.category, tee.price) == ("Café T-shirt ☕", "Clothes > T-shirts", 20.0)
        assert [(v.variant_id, v.attributes, v.price, v.stock) for v in tee.variants] == [
            ("TEE-M", {"size": "M", "colour": "grey"}, 22.5, 0),
            ("TEE-S", {"size": "S", "colour": "grey"}, None, 3),
        ]
        assert store.catalog.get("85123A").attributes == {"brand": "Acme"}
        assert set(store.catalog.get_many(["BAD", "HAT"])) == set()
        history_before = store.catalog.history()
    finally:
        store.close()

    second = run_json(str(path), "--db", database_url)
    assert (second["created"], second["updated"], second["unchanged"], second["changes"]) == (0, 0, 2, 0)
    assert second["skipped"] == first["skipped"]
    store = Store.open(database_url)
    try:
        assert store.catalog.history() == history_before
    finally:
        store.close()


def test_a_changed_file_updates_and_records_the_history(sqlite_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "catalog.csv", CATALOG_CSV)
    run_json(str(path), "--db", sqlite_url)
    # TEE drops to 18 and M comes back in stock.
    changed = CATALOG_CSV.replace("Clothes > T-shirts,20,", "Clothes > T-shirts,18,").replace(
        "TEE-M,M,grey,0,", "TEE-M,M,grey,5,"
    )
    path.write_text(changed, encoding="utf-8")
    again = run_json(str(path), "--db", sqlite_url)
    assert (again["created"], again["updated"], again["unchanged"], again["changes"]) == (0, 1, 1, 2)
    store = Store.open(sqlite_url)
    try:
        moves = [(c.variant_id, c.field, c.old_value, c.new_value) for c in store.catalog.history("TEE")]
    finally:
        store.close()
    assert moves[-2:] == [("", "price", 20.0, 18.0), ("TEE-M", "stock", 0.0, 5.0)]


def test_the_summary_in_words(sqlite_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "catalog.csv", CATALOG_CSV)
    done = run(str(path), "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("lines read", "created", "updated", "unchanged", "lines skipped", "Skipped lines"):
        assert expected in out
    assert "│ 6    │ stock: must be at least 0" in out
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["catalog.json", "catalog.jsonl"])
def test_json_and_jsonl_files(name: str, sqlite_url: str, tmp_path: Path) -> None:
    items = [
        {"item_id": str(n), "title": f"Item {n} ünïcode ☕", "price": n / 4, "currency": "GBP"}
        for n in range(600)  # more than one transaction's worth
    ]
    items[10] = {"item_id": "10", "title": "Bad", "price": "abc"}
    if name.endswith(".jsonl"):
        content = "\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n"
    else:
        content = json.dumps({"items": items}, indent=2, ensure_ascii=False)
    path = write(tmp_path, name, content)
    first = run_json(str(path), "--db", sqlite_url)
    assert (first["lines_read"], first["items"], first["created"]) == (600, 599, 599)
    bad_line = 11 if name.endswith(".jsonl") else 3 + 10 * 6  # "{", "  \"items\": [", then 6 lines an item
    assert [s["line"] for s in first["skipped"]] == [bad_line]
    assert first["skipped"][0]["reason"].startswith("price: Input should be a valid number")
    second = run_json(str(path), "--db", sqlite_url)
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 599)
    store = Store.open(sqlite_url)
    try:
        assert store.catalog.count() == 599
        assert store.catalog.get("599").title == "Item 599 ünïcode ☕"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("catalog.xlsx", "", "error: catalog.xlsx: unknown catalog format '.xlsx'"),
        ("catalog.csv", "item_id,price\n1,2\n", "error: the CSV needs the columns item_id, title"),
        ("catalog.json", '[{"item_id": "1", "title": "One"}', "error: the JSON ends too early"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line_exit_1_and_writes_nothing(
    name: str, content: str, message: str, tmp_path: Path
) -> None:
    path = write(tmp_path, name, content)
    db = tmp_path / "shop.db"
    done = run(str(path), "--db", f"sqlite:///{db}")
    assert done.returncode == 1
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_a_missing_file(tmp_path: Path) -> None:
    done = run(str(tmp_path / "nope.csv"), "--db", f"sqlite:///{tmp_path / 'shop.db'}")
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot read ")
    assert "Traceback" not in done.stderr
