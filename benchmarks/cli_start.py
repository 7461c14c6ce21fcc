"""How fast the `shopkeeper` command starts: `--help`, `keys create` and `people show`, each start to exit.

Each command runs as a new process, as a user runs it, against a small SQLite shop made first (one
person). The anchor is a bare `python -c "import sqlalchemy, typer"`, timed in the same run and interleaved
with the commands, so that a busy machine slows both alike. The goal (issue 13, item 10): each command takes
at most 2x the anchor in wall-clock time (0.5 s on a quiet machine). CPU seconds are shown beside: on a
machine busy with other work, they say more than the wall clock does. A command over the goal has usually
started importing something heavy at start-up: `python -X importtime -m shopkeeper --help` shows what.

Both sides start from compiled bytecode, as an installed shopkeeper does (pip compiles what it installs,
the anchor's libraries included): shopkeeper's own modules are compiled first, since an editable install
under `PYTHONDONTWRITEBYTECODE=1` would otherwise compile them from source at every start.

    .venv/bin/python benchmarks/cli_start.py [--runs 11] [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from goals import record
from rich.console import Console
from rich.table import Table

import shopkeeper as shopkeeper_package
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

GOAL_RATIO = 2.0
ANCHOR = [sys.executable, "-c", "import sqlalchemy, typer"]
PERSON = "bench-person"

console = Console(highlight=False, soft_wrap=True)


def shopkeeper_command() -> list[str]:
    """The installed `shopkeeper` script beside this Python, else the same entry point through `-c`."""
    script = Path(sys.executable).parent / "shopkeeper"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from shopkeeper.cli.main import main; main()"]


def make_shop(url: str) -> None:
    """A migrated shop with one known person, for `people show`."""
    with Shop.from_settings(Settings(database_url=url)) as shop:
        shop.identify(user_id=PERSON, traits={"email": "bench@example.com"})


def seconds(command: list[str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds from start to exit (on a busy machine, wall > CPU). A failing command stops
    the benchmark: its time means nothing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="runs of each command; the median counts")
    parser.add_argument("--quick", action="store_true", help="5 runs of each (benchmarks/quick.py)")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else args.runs

    compileall.compile_dir(Path(shopkeeper_package.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'shop.db'}"
        make_shop(url)
        shopkeeper = shopkeeper_command()
        commands = {
            "--help": [*shopkeeper, "--help"],
            "keys create": [*shopkeeper, "keys", "create", "--kind", "write", "--name", "bench", "--db", url],
            "people show": [*shopkeeper, "people", "show", PERSON, "--db", url],
        }
        for command in commands.values():  # once each, untimed: the first run fills the OS's file cache
            seconds(command, workdir)
        timings: dict[str, list[tuple[float, float]]] = {"anchor": [], **{name: [] for name in commands}}
        for _ in range(runs):  # interleaved: noise from other work on the machine hits all of them alike
            timings["anchor"].append(seconds(ANCHOR, workdir))
            for name, command in commands.items():
                timings[name].append(seconds(command, workdir))

    anchor, anchor_cpu = (statistics.median(t[i] for t in timings["anchor"]) for i in (0, 1))
    table = Table(
        "command",
        "median s",
        "fastest s",
        "x anchor",
        "CPU s",
        "CPU x",
        f"goal <= {GOAL_RATIO:g}x",
        title=f"shopkeeper start to exit, {runs} runs each (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores)",
        title_justify="left",
    )
    fastest_anchor = min(t[0] for t in timings["anchor"])
    table.add_row(
        "anchor: import sqlalchemy, typer",
        f"{anchor:.3f}",
        f"{fastest_anchor:.3f}",
        "",
        f"{anchor_cpu:.3f}",
    )
    for name in commands:
        median, cpu = (statistics.median(t[i] for t in timings[name]) for i in (0, 1))
        ratio = median / anchor
        met = ratio <= GOAL_RATIO
        table.add_row(
            name,
            f"{median:.3f}",
            f"{min(t[0] for t in timings[name]):.3f}",
            f"{ratio:.2f}",
            f"{cpu:.3f}",
            f"{cpu / anchor_cpu:.2f}",
            "met" if met else "[red]missed[/red]",
        )
        record(
            "cli_start",
            f"shopkeeper {name}, start to exit",
            f"{median:.2f} s",
            anchor=f"import sqlalchemy, typer {anchor:.2f} s",
            ratio=round(ratio, 2),
            goal=f"<= {GOAL_RATIO:g}x anchor",
            met=met,
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
