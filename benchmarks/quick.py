"""Every benchmark's quick mode, one after the other: each prints its own table, then a summary of all.

Quick means fewer calls, seconds and repetitions than each script's default, so that the whole set runs in
minutes on a 2-core machine and a regression shows up before an issue is resolved. The figures are noisier
than a full run's; each script still measures against its anchor in the same run, so ratios stay
comparable. `ceiling.py` (a diagnostic of hours, run by hand) is left out.

    .venv/bin/python benchmarks/quick.py [--only decide ingest_http ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> the arguments of its quick mode
QUICK: dict[str, list[str]] = {
    "assignment": ["--n", "200000"],
    "report": ["--people", "50000", "--outcomes", "20000"],
    "ope": ["--bootstrap", "200"],
    "evaluate": ["--speed-only"],
    "import_orders": ["--anchor-runs", "1"],
    "profiles": ["--fetches", "1000"],
    "decide": ["--calls", "1000", "--seconds", "8", "--skip-train"],
    "ingest_http": ["--seconds", "6", "--warmup", "2"],
    "categories": [],
    "faults": ["--quick"],
    "api_fuzz": ["--quick"],
    "cli_start": ["--quick"],
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), default=None)
    args = parser.parse_args()
    summary: list[tuple[str, int, float]] = []
    for name in args.only or list(QUICK):
        script = HERE / f"{name}.py"
        if not script.exists():
            continue
        command = [sys.executable, str(script), *QUICK[name]]
        print(f"\n=== {' '.join(['benchmarks/' + script.name, *QUICK[name]])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command)
        summary.append((name, code, time.perf_counter() - started))
    print("\n| benchmark | exit | seconds |\n|---|---|---|")
    for name, code, seconds in summary:
        print(f"| {name} | {code} | {seconds:.0f} |")
    sys.exit(max((code for _, code, _ in summary), default=0) != 0)


if __name__ == "__main__":
    main()
