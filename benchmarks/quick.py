"""Every benchmark's quick mode, one after the other, then one table of every goal they measured.

Quick means fewer calls, seconds and repetitions than each script's default, so that the whole set runs in
minutes on a 2-core machine and a regression shows up before an issue is resolved. The figures are noisier
than a full run's; each script still measures against its anchor in the same run, so ratios stay
comparable. `ceiling.py` (a diagnostic of hours, run by hand) is left out, and so is a script that does
not exist (yet).

Each script prints its own table, and reports each goal through `goals.record(...)` into a file this
runner names in `SHOPKEEPER_BENCH_GOALS`. At the end comes one table of them all (benchmark, measure,
figure, anchor, ratio, goal, met), with rich, then again in Markdown for pasting into notes; `--json`
prints it as JSON instead (the scripts' own output then goes to stderr).

Timings never fail: the exit status is 0 when a goal is missed, and 1 only when a script crashed (it
exited non-zero without recording a missed goal that explains it), which the table says too.

    benchmarks/all [--only decide ingest_http ...] [--json]
    .venv/bin/python benchmarks/quick.py [--only decide ingest_http ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goals import ENVIRONMENT
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from shared_data import ONLINE_RETAIL, OPEN_BANDIT

HERE = Path(__file__).resolve().parent
COLUMNS = ("benchmark", "measure", "figure", "anchor", "ratio", "goal", "met")

# scripts that read a real dataset from ../shared/data (or SHOPKEEPER_SHARED_DATA): without it they are
# listed as not run, with where the data was looked for, rather than as crashed
NEEDS_DATA: dict[str, Path] = {
    "ope": OPEN_BANDIT,
    "evaluate": ONLINE_RETAIL,
    "import_orders": ONLINE_RETAIL,
    "profiles": ONLINE_RETAIL,
    "ingest_http": ONLINE_RETAIL,
    "personas": ONLINE_RETAIL,
}

# script -> the arguments of its quick mode
QUICK: dict[str, list[str]] = {
    "assignment": ["--n", "100000", "--calls", "50000"],
    "report": ["--people", "25000", "--outcomes", "10000"],
    "ope": ["--bootstrap", "200"],
    "evaluate": ["--speed-only"],
    "import_orders": ["--anchor-runs", "1"],
    "profiles": ["--fetches", "1000"],
    "decide": ["--calls", "1000", "--seconds", "4", "--skip-train"],
    "ingest_http": ["--seconds", "3", "--warmup", "1", "--in-process-batches", "50"],
    "categories": [],
    "faults": ["--quick"],
    "api_fuzz": ["--cases", "500"],  # its --quick (1,000 cases) runs in the slow tests already
    "cli_start": ["--quick"],
    "content": ["--quick"],
    "moments": ["--quick"],
    "personas": ["--quick"],
    "audiences": ["--quick"],
    "dashboard": ["--quick"],
}


@dataclass
class Run:
    """One script's run: how it ended, how long it took, and the goals it recorded."""

    benchmark: str
    command: str
    exit_code: int | None  # None: not run (stopped before it)
    seconds: float
    cpu_seconds: float = 0.0  # of the script and what it started: what a busy machine does not inflate
    goals: list[dict[str, Any]] = field(default_factory=list)
    why_not_run: str = ""

    @property
    def crashed(self) -> bool:
        """Non-zero without a missed goal to explain it (some scripts exit 1 when a goal is missed)."""
        if self.exit_code is None:
            return False
        explained = self.exit_code == 1 and any(goal["met"] is False for goal in self.goals)
        return self.exit_code != 0 and not explained

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return f"not run: {self.why_not_run}" if self.why_not_run else "not run"
        if self.exit_code == -signal.SIGTERM:
            return "CRASHED (stopped by SIGTERM: a time limit?)"
        if self.crashed:
            return f"CRASHED (exit {self.exit_code})"
        return "ran" if self.exit_code == 0 else f"ran (exit {self.exit_code}: a goal missed)"


class Stopped(Exception):
    """SIGTERM (CI's `timeout`): the running script is killed, and the table printed for what ran."""


def stop(_signal: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: `timeout` signals the whole process group too
    raise Stopped


def run_one(name: str, results: Path, quiet: bool) -> Run:
    """One script in its quick mode, its goals recorded into `results` (read back, then removed)."""
    script = HERE / f"{name}.py"
    command = [sys.executable, str(script), *QUICK[name]]
    shown = " ".join(["benchmarks/" + script.name, *QUICK[name]])
    print(f"\n=== {shown}", file=sys.stderr if quiet else sys.stdout, flush=True)
    environment = {**os.environ, ENVIRONMENT: str(results)}
    started = time.perf_counter()
    cpu = _children_cpu()
    try:
        code = subprocess.call(command, env=environment, stdout=sys.stderr if quiet else None)
    except Stopped:  # subprocess.call has killed the script
        code = -signal.SIGTERM
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    goals = []
    if results.exists():
        goals = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line]
        results.unlink()
    return Run(name, shown, code, seconds, cpu, goals)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cells(goal: dict[str, Any]) -> list[str]:
    """A recorded goal's row as display text (benchmark left out)."""
    ratio = goal.get("ratio")
    met = goal.get("met")
    return [
        goal.get("measure", ""),
        goal.get("figure", ""),
        goal.get("anchor") or "none",
        "" if ratio is None else f"{ratio:,.{2 if ratio < 10 else 1 if ratio < 100 else 0}f}x",
        goal.get("goal") or "—",
        "—" if met is None else "yes" if met else "NO",
    ]


def rows(runs: list[Run]) -> list[list[str]]:
    """Every goal of every run, and a row for a run that crashed or recorded nothing."""
    out: list[list[str]] = []
    for run in runs:
        out += [[run.benchmark, *cells(goal)] for goal in run.goals]
        if run.crashed or not run.goals:
            note = run.status if run.crashed or run.exit_code is None else "recorded no goal"
            out.append([run.benchmark, note, "", "", "", "", "CRASHED" if run.crashed else "—"])
    return out


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    return "\n".join(lines)


def totals(runs: list[Run]) -> str:
    goals = [goal for run in runs for goal in run.goals]
    met = sum(goal["met"] is True for goal in goals)
    missed = sum(goal["met"] is False for goal in goals)
    unjudged = sum(goal["met"] is None and bool(goal["goal"]) for goal in goals)
    crashed = [run.benchmark for run in runs if run.crashed]
    seconds = ", ".join(f"{run.benchmark} {run.seconds:.0f} ({run.cpu_seconds:.0f})" for run in runs)
    return (
        f"{met + missed + unjudged} goals: {met} met, {missed} missed, {unjudged} not judged in quick mode "
        f"(and {len(goals) - met - missed - unjudged} figures without a goal); "
        f"crashed: {', '.join(crashed) or 'none'}. Seconds (CPU): {seconds}; "
        f"{sum(run.seconds for run in runs):.0f} ({sum(run.cpu_seconds for run in runs):.0f}) in all "
        f"on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}."
    )


def print_tables(runs: list[Run]) -> None:
    table = rows(runs)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    out = Table(title="Every benchmark's goals (quick mode)", title_justify="left")
    for column in COLUMNS:
        out.add_column(column, justify="right" if column == "ratio" else "left")
    for row in table:
        style = {"NO": "red", "CRASHED": "bold red", "yes": "green"}.get(row[-1])
        out.add_row(*(escape(cell) for cell in row), style=style)
    console.print(out)
    console.print(escape(totals(runs)))
    print("\n" + markdown(table) + "\n\n" + totals(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), default=None)
    parser.add_argument("--json", action="store_true", help="print the goals as JSON (scripts to stderr)")
    args = parser.parse_args()
    runs: list[Run] = []
    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory(prefix="shopkeeper-goals-") as tmp:
        for name in args.only or list(QUICK):
            data = NEEDS_DATA.get(name)
            if data is not None and not data.exists():
                missing = f"no data at {data} (SHOPKEEPER_SHARED_DATA names the datasets folder)"
                runs.append(Run(name, "", None, 0.0, why_not_run=missing))
                continue
            if (HERE / f"{name}.py").exists():
                runs.append(run_one(name, Path(tmp) / f"{name}.jsonl", quiet=args.json))
                if runs[-1].exit_code == -signal.SIGTERM:
                    break  # stopped: the rest are not run
    ran = {run.benchmark for run in runs}
    runs += [
        Run(name, "", None, 0.0, 0.0)
        for name in args.only or QUICK
        if name not in ran and (HERE / f"{name}.py").exists()
    ]
    if args.json:
        payload = [{**asdict(run), "crashed": run.crashed, "status": run.status} for run in runs]
        print(json.dumps(payload, indent=2))
    else:
        print_tables(runs)
    sys.exit(1 if any(run.crashed for run in runs) else 0)


if __name__ == "__main__":
    main()
