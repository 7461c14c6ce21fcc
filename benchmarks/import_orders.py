"""`import orders` of the whole UCI Online Retail file into a fresh SQLite database, against pandas.

It runs the code the CLI runs (`open_file` + `import_orders`, on a store opened with the CLI's settings),
then the same import again (idempotent: it must store nothing), and times a plain `pandas.read_csv` of the
same file as the anchor: the speed of just parsing the CSV. The target is 50,000 lines/s.

    .venv/bin/python benchmarks/import_orders.py [--file PATH] [--db-dir DIR]

pandas is a benchmark-only dependency (`pip install pandas`); without it the anchor is left out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shopkeeper.events.importers import ImportReport, import_orders, open_file
from shopkeeper.settings import Settings
from shopkeeper.store import Store

try:
    import pandas
except ImportError:  # a benchmark-only dependency
    pandas = None

RETAIL_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
)
TARGET_LINES_PER_SECOND = 50_000.0

console = Console(highlight=False, soft_wrap=True)


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds (on a busy machine, wall > CPU), and the result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - started, time.process_time() - cpu, result


def import_file(store: Store, path: Path) -> ImportReport:
    with open_file(path) as source:
        return import_orders(store, source)


def pandas_seconds(path: Path, runs: int) -> float | None:
    """The best of `runs` plain `pandas.read_csv` calls, or None without pandas."""
    if pandas is None:
        return None
    return min(timed(lambda: pandas.read_csv(path))[0] for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=RETAIL_CSV, help="the Online Retail CSV (gzip or plain)")
    parser.add_argument("--db-dir", type=Path, default=None, help="where the SQLite file goes [a temp dir]")
    parser.add_argument("--pandas-runs", type=int, default=3, help="pandas.read_csv runs; the best counts")
    args = parser.parse_args(argv)

    anchor = pandas_seconds(args.file, args.pandas_runs)
    with tempfile.TemporaryDirectory(dir=args.db_dir) as workdir:
        settings = Settings(database_url=f"sqlite:///{Path(workdir) / 'bench.db'}")
        store = Store.open(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        try:
            first_seconds, first_cpu, first = timed(lambda: import_file(store, args.file))
            second_seconds, second_cpu, second = timed(lambda: import_file(store, args.file))
        finally:
            store.close()

    lines = first.rows_read
    table = Table(
        "run",
        "lines",
        "seconds",
        "cpu s",
        "lines/s",
        "x pandas time",
        title=f"import orders: {args.file.name} into SQLite (synchronous={settings.sqlite_synchronous})",
        title_justify="left",
    )
    runs = (
        ("import orders", first_seconds, first_cpu),
        ("import again (idempotent)", second_seconds, second_cpu),
    )
    for name, seconds, cpu in runs:
        ratio = f"{seconds / anchor:.1f}" if anchor else "n/a"
        table.add_row(name, f"{lines:,}", f"{seconds:.2f}", f"{cpu:.2f}", f"{lines / seconds:,.0f}", ratio)
    if anchor is not None:
        table.add_row(
            "pandas.read_csv (anchor)", f"{lines:,}", f"{anchor:.2f}", "", f"{lines / anchor:,.0f}", "1.0"
        )
    else:
        table.add_row("pandas.read_csv (anchor)", "", "", "", "", "pandas not installed")
    console.print(table)
    skipped = ", ".join(f"{reason} {n:,}" for reason, n in first.skipped.items())
    console.print(
        f"First import: {first.orders:,} orders, {first.returns:,} returns, {first.people_created:,} people, "
        f"{first.items_created:,} items; {first.rows_imported:,} lines imported, "
        f"{sum(first.skipped.values()):,} skipped ({skipped})."
    )
    console.print(
        f"Second import: {second.orders + second.returns} events stored, "
        f"{second.orders_already_imported:,} found already stored."
    )
    speed = lines / first_seconds
    verdict = "meets" if speed >= TARGET_LINES_PER_SECOND else "MISSES"
    console.print(f"{speed:,.0f} lines/s {verdict} the target of {TARGET_LINES_PER_SECOND:,.0f} lines/s.")
    ok = speed >= TARGET_LINES_PER_SECOND and second.orders + second.returns == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
