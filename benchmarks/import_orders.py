"""`shopkeeper import orders` of the whole UCI Online Retail file, start to exit, against a csv.reader pass.

The command runs as a user runs it, in a subprocess (`.venv/bin/shopkeeper import orders FILE --db
sqlite:///...`), into a fresh SQLite database: starting the CLI, reading, storing, and deriving the
imported people's profiles. Then it runs again (idempotent: it must store nothing). The anchor, timed in
the same run, is one plain `csv.reader` pass over the same gzipped file. The goal: the whole command in
at most 8x the anchor's time, and at least 50,000 lines/s. The import's own time (the command less its
start) is shown beside it.

    .venv/bin/python benchmarks/import_orders.py [--file PATH] [--db-dir DIR] [--anchor-runs N]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from goals import record  # benchmarks/goals.py, beside this script
from rich.console import Console
from rich.table import Table
from shared_data import ONLINE_RETAIL

RETAIL_CSV = ONLINE_RETAIL
MAX_RATIO = 8.0
TARGET_LINES_PER_SECOND = 50_000.0
SHOPKEEPER = Path(sys.executable).with_name("shopkeeper")

console = Console(highlight=False, soft_wrap=True)


def csv_reader_seconds(path: Path, runs: int) -> tuple[float, float]:
    """The best of `runs` plain `csv.reader` passes over the (gzipped) file: wall and CPU seconds."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as text:
            for _ in csv.reader(text):
                pass
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def sqlite_floor_seconds(db: Path, runs: int = 2) -> float:
    """SQLite's own share: the seconds to insert the rows the import stored in `events` and
    `interactions` (with their indexes) into an empty copy of the schema, in one transaction, in C
    (`executemany`), with the store's pragmas. No Python work of ours is in it: a floor under the import.
    """
    source = sqlite3.connect(db)
    tables = ("events", "interactions")
    schema = [
        sql
        for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN (?, ?) ORDER BY type DESC",
            tables,
        )
    ]
    rows = {table: source.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
    source.close()
    best = float("inf")
    for _ in range(runs):
        with tempfile.TemporaryDirectory(dir=db.parent) as workdir:
            target = sqlite3.connect(Path(workdir) / "floor.db", isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=OFF"):
                target.execute(f"PRAGMA {pragma}")
            for sql in schema:
                target.execute(sql)
            started = time.perf_counter()
            target.execute("BEGIN")
            for table in tables:
                marks = ", ".join("?" * len(rows[table][0])) if rows[table] else ""
                if marks:
                    target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
            target.execute("COMMIT")
            best = min(best, time.perf_counter() - started)
            target.close()
    return best


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(path: Path, url: str) -> tuple[float, float, dict[str, Any]]:
    """The whole command's wall and CPU seconds, start to exit (on a busy machine, wall > CPU), and its
    --json report."""
    command = [str(SHOPKEEPER), "import", "orders", str(path), "--db", url, "--json"]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, cpu_seconds, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=RETAIL_CSV, help="the Online Retail CSV (gzip or plain)")
    parser.add_argument("--db-dir", type=Path, default=None, help="where the SQLite file goes [a temp dir]")
    parser.add_argument("--anchor-runs", type=int, default=3, help="csv.reader passes; the best counts")
    args = parser.parse_args(argv)

    anchor, anchor_cpu = csv_reader_seconds(args.file, args.anchor_runs)
    with tempfile.TemporaryDirectory(dir=args.db_dir) as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.db'}"
        first_seconds, first_cpu, first = run_command(args.file, url)
        second_seconds, second_cpu, second = run_command(args.file, url)
        floor = sqlite_floor_seconds(Path(workdir) / "bench.db")

    lines = int(first["rows_read"])
    own = float(first["seconds"]) + float(first["rebuild_seconds"])  # reading, storing, profiles
    table = Table(
        "run",
        "lines",
        "seconds",
        "cpu s",
        "lines/s",
        "x csv.reader",
        title=f"import orders: {args.file.name} into SQLite, the whole command in a subprocess",
        title_justify="left",
    )
    rows = (
        ("import orders, start to exit", first_seconds, f"{first_cpu:.2f}"),
        ("  the import and profiles", own, ""),
        ("  the rest (CLI start, exit)", first_seconds - own, ""),
        ("again (idempotent), start to exit", second_seconds, f"{second_cpu:.2f}"),
        ("csv.reader pass (anchor)", anchor, f"{anchor_cpu:.2f}"),
        ("SQLite alone: the stored events and interactions (C)", floor, ""),
    )
    for name, seconds, cpu in rows:
        table.add_row(
            name, f"{lines:,}", f"{seconds:.2f}", cpu, f"{lines / seconds:,.0f}", f"{seconds / anchor:.1f}"
        )
    console.print(table)
    console.print(
        f"First import: {first['orders']:,} orders, {first['returns']:,} returns, "
        f"{first['people_created']:,} people, {first['items_created']:,} items, "
        f"{first['profiles_rebuilt']:,} profiles ({first['seconds']:.2f} s import, "
        f"{first['rebuild_seconds']:.2f} s profiles). Second import: "
        f"{second['orders'] + second['returns']} events stored, "
        f"{second['orders_already_imported']:,} found already stored."
    )
    ratio = first_seconds / anchor
    speed = lines / first_seconds
    met = ratio <= MAX_RATIO and speed >= TARGET_LINES_PER_SECOND
    console.print(
        f"The whole command: {speed:,.0f} lines/s, {ratio:.1f}x csv.reader: "
        f"{'meets' if met else 'MISSES'} the goal (<= {MAX_RATIO:.0f}x, >= {TARGET_LINES_PER_SECOND:,.0f} "
        f"lines/s). Without the CLI's start: {lines / own:,.0f} lines/s, {own / anchor:.1f}x. In CPU "
        f"seconds: {first_cpu / anchor_cpu:.1f}x."
    )
    anchor_text = f"csv.reader {anchor:.2f} s"
    record(
        "import_orders",
        "import orders, whole command",
        f"{speed:,.0f} lines/s ({first_seconds:.2f} s)",
        anchor=anchor_text,
        ratio=ratio,
        goal=f"<= {MAX_RATIO:.0f}x csv.reader, >= {TARGET_LINES_PER_SECOND:,.0f} lines/s",
        met=met,
    )
    record(
        "import_orders",
        "  SQLite alone: inserting the stored rows (a floor)",
        f"{floor:.2f} s",
        anchor=anchor_text,
        ratio=floor / anchor,
    )
    record(
        "import_orders",
        "import orders, import and profiles (no CLI start)",
        f"{lines / own:,.0f} lines/s ({own:.2f} s)",
        anchor=anchor_text,
        ratio=own / anchor,
    )
    return 0 if second["orders"] + second["returns"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
