"""Each benchmark's goals, reported in one shape so that one command can print them all in one table.

A benchmark calls `record(...)` once per goal it measures, after printing its own table. When the
environment names a results file (`SHOPKEEPER_BENCH_GOALS`, set by `benchmarks/quick.py`), each record is
appended to it as one JSON line; otherwise `record` does nothing, so a benchmark run by hand is unchanged.

A figure is measured against an anchor timed in the same run (machines here are shared and noisy), so the
goal is stated on the ratio where there is one: `ratio` is figure / anchor in the direction the goal
states ("at most 8x a plain csv.reader pass" has ratio = command seconds / csv seconds, goal "<= 8").
Where the goal is stated on the figure alone ("p99 <= 2 ms"), `ratio` is still figure / anchor, for
context. A goal with no anchor in the run leaves `anchor` empty (the table says "none"); a goal that this
run did not measure (a part skipped in quick mode) is recorded with its figure saying so and `met` None.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENVIRONMENT = "SHOPKEEPER_BENCH_GOALS"


def record(
    benchmark: str,
    measure: str,
    figure: str,
    *,
    anchor: str = "",
    ratio: float | None = None,
    goal: str = "",
    met: bool | None = None,
) -> None:
    """One measured goal. `figure` and `anchor` are display text with their units ("61,200 lines/s",
    "csv.reader 0.41 s"); `ratio` as above; `met` None when there is no goal or it was not judged."""
    path = os.environ.get(ENVIRONMENT)
    if not path:
        return
    row: dict[str, Any] = {
        "benchmark": benchmark,
        "measure": measure,
        "figure": figure,
        "anchor": anchor,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
