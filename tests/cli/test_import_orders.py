"""`shopkeeper import orders` as a user runs it: a real process, its output and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SHOPKEEPER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_sample_imports_once_and_shows_customer_17850(database_url: str) -> None:
    done = run("import", "orders", "--sample", "--json", "--db", database_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "online-retail"
    assert report["rows_read"] == 48_110
    assert report["rows_read"] == report["rows_imported"] + report["rows_skipped"]
    assert report["bad_rows"] == []
    assert report["orders"] > 2000 and report["returns"] > 300
    assert report["people_created"] > 500 and report["items_created"] > 3000
    # Replayed so that it ends today: every date moves by the same whole number of days.
    shift = timedelta(days=report["shifted_days"])
    newest = datetime.fromisoformat(report["newest_order_at"])
    assert newest - shift == datetime(2011, 9, 30, 15, 14, tzinfo=UTC)
    assert newest <= datetime.now(UTC) < newest + timedelta(days=1)
    assert "replayed shifted by" in run("import", "orders", "--sample", "--db", database_url).stdout

    shown = run("people", "show", "17850", "--json", "--db", database_url)
    assert shown.returncode == 0, shown.stderr
    person = json.loads(shown.stdout)
    # 17850 has 35 invoices in the sample: 34 orders and one cancellation.
    assert person["event_count"] == 35
    assert person["event_counts"] == {"track": 35}
    assert person["first_seen"] == (datetime(2010, 12, 1, 8, 26, tzinfo=UTC) + shift).isoformat()
    assert "favourite_categories" in {t["key"] for t in person["traits"]}  # a live guess, not expired

    again = json.loads(run("import", "orders", "--sample", "--json", "--db", database_url).stdout)
    assert (again["orders"], again["returns"], again["people_created"], again["items_created"]) == (
        0,
        0,
        0,
        0,
    )
    assert again["orders_already_imported"] == report["orders"] + report["returns"]
    assert again["shifted_days"] == report["shifted_days"]
    assert (
        json.loads(run("people", "show", "17850", "--json", "--db", database_url).stdout)["event_count"] == 35
    )


def test_a_file_in_words_with_its_bad_rows(sqlite_url: str, tmp_path: Path) -> None:
    lines = [
        HEADER,
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.0,17850.0,United Kingdom",
        "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-01 09:41:00,2.55,17850.0,UK",
    ]
    lines += [
        f"5364{i:02},71053,WHITE METAL LANTERN,many,2010-12-01 10:00:00,3.39,,United Kingdom"
        for i in range(12)
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    done = run("import", "orders", str(path), "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    out = done.stdout
    assert "1 order and 1 return stored" in out
    assert "rows read" in out and "15" in out
    assert "not_a_product" in out and "bad_quantity" in out
    assert "Bad rows (the first 10 of 12; all with --json)" in out
    assert "│ 5    │ bad_quantity" in out and "│ 14   │" in out and "│ 15   │" not in out

    listed = json.loads(run("import", "orders", str(path), "--json", "--db", sqlite_url).stdout)
    assert [b["line"] for b in listed["bad_rows"]] == list(range(5, 17))
    assert listed["skipped"] == {"bad_quantity": 12, "not_a_product": 1}


def test_generic_format_with_flags_and_a_toml_mapping(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(
        "Order,Email,SKU,Name,Qty,Each,When\n"
        "A-1,ann@example.com,SKU-1,Grey wool scarf,2,20.00,2026-05-03 10:00\n"
        "A-1,ann@example.com,SKU-1,Grey wool scarf,-1,20.00,2026-05-04 10:00\n"
    )
    flags = ["--order-id", "Order", "--customer-id", "Email", "--item-id", "SKU", "--title", "Name"]
    flags += ["--quantity", "Qty", "--price", "Each", "--timestamp", "When", "--default-currency", "EUR"]
    done = run("import", "orders", str(path), *flags, "--json", "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["format"], report["orders"], report["returns"]) == ("generic", 1, 1)

    mapping = tmp_path / "orders.toml"
    mapping.write_text(
        'order_id = "Order"\ncustomer_id = "Email"\nitem_id = "SKU"\ntitle = "Name"\nquantity = "Qty"\n'
        'price = "Each"\ntimestamp = "When"\n'
    )
    again = json.loads(
        run("import", "orders", str(path), "--mapping", str(mapping), "--json", "--db", sqlite_url).stdout
    )
    assert again["orders_already_imported"] == 2  # the same messageIds: generic:A-1, generic:A-1:refund

    other = run(
        "import",
        "orders",
        str(path),
        "--mapping",
        str(mapping),
        "--source",
        "shop2",
        "--json",
        "--db",
        sqlite_url,
    )
    assert json.loads(other.stdout)["orders"] == 1  # another source, other messageIds
    shown = json.loads(run("people", "show", "ann@example.com", "--json", "--db", sqlite_url).stdout)
    assert shown["event_count"] == 4


def test_mistakes_are_one_line_and_exit_1(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("order_id,item_id\n1,A\n")
    cases = [
        (("import", "orders"), "error: give an orders FILE to import, or --sample"),
        (("import", "orders", str(path), "--sample"), "error: give FILE or --sample, not both"),
        (("import", "orders", str(tmp_path / "nope.csv")), "error: cannot read"),
        (("import", "orders", "--sample", "--order-id", "x"), "error: --mapping and the column flags"),
        (("import", "orders", str(path), "--as-recorded"), "error: --as-recorded is for --sample only"),
        (("import", "orders", str(path)), "error: " + str(path) + ": no column for quantity"),
        (("import", "orders", str(path), "--default-currency", "euro"), "error: default currency 'euro'"),
    ]
    for args, message in cases:
        done = run(*args, "--db", sqlite_url)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith(message), (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
