"""Batched HTTP ingestion (/v1/batch) on SQLite and PostgreSQL, against a raw `executemany` anchor.

Phases per backend: an open loop at a fixed offered rate (acknowledgement latency), a closed loop
(sustained events/s), the anchor, and the write path alone in this process (CPU ms and SQL statements
per batch: the figures that hold still on a busy machine). The parts live in `ingest_support/`.

    .venv/bin/python benchmarks/ingest_http.py [--backend sqlite|postgresql|both] [--json]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from goals import record
from ingest_support.databases import (
    DEFAULT_PG_URL,
    Databases,
    count_events,
    executemany_anchor,
    prepare,
    stitching,
)
from ingest_support.inprocess import InProcessResult, ingest_in_process
from ingest_support.load import PhaseResult, closed_loop, open_loop
from ingest_support.server import running_server
from ingest_support.workload import EventStream
from rich.console import Console
from rich.markup import escape
from rich.table import Table

try:
    from uvloop import run as run_loop  # with uvicorn[standard], except on Windows
except ImportError:
    from asyncio import run as run_loop  # type: ignore[assignment]

TARGET_EVENTS_PER_SECOND = 5_000.0
TARGET_P99_MS = 50.0

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
progress = Console(highlight=False, soft_wrap=True, stderr=True, markup=False)


@dataclass
class BackendResult:
    backend: str
    open_loop: PhaseResult
    closed_loop: PhaseResult
    anchor: PhaseResult
    mix: dict[str, int]  # messages per type, in the closed loop's batches
    stitching: dict[str, int]  # what the closed loop's identity resolution did
    in_process: InProcessResult  # the write path alone: CPU and statements per batch

    @property
    def ratio(self) -> float:
        return self.closed_loop.events_per_second / self.anchor.events_per_second


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    databases = Databases(backend, workdir, args.pg_url)
    try:
        stream = EventStream(args.seed)
        open_batches = math.ceil((args.warmup + args.seconds) * args.rate / args.batch_size)
        closed_batches = math.ceil((args.warmup + args.seconds) * args.max_rate / args.batch_size)
        progress.print(
            f"[{backend}] preparing {open_batches + closed_batches:,} batches of {args.batch_size}…"
        )
        open_work = stream.batches(open_batches, args.batch_size, key_id=1)
        closed_work = stream.batches(closed_batches, args.batch_size, key_id=1)

        url = databases.fresh("open")
        key = prepare(url, args.people)
        progress.print(
            f"[{backend}] open loop at {args.rate:,.0f} events/s for {args.warmup}+{args.seconds} s…"
        )
        with running_server(url, workdir, args.workers) as server:
            opened = run_loop(open_loop(server, key, open_work, args.rate, args.warmup, args.seconds))
            opened.server_problems = server.problems()
        opened.stored = count_events(url)

        url = databases.fresh("closed")
        key = prepare(url, args.people)
        progress.print(
            f"[{backend}] closed loop, {args.clients} clients, for {args.warmup}+{args.seconds} s…"
        )
        with running_server(url, workdir, args.workers) as server:
            closed = run_loop(closed_loop(server, key, closed_work, args.clients, args.warmup, args.seconds))
            closed.server_problems = server.problems()
        closed.stored = count_events(url)
        stitched = stitching(url)
        n_batches = math.ceil(closed.stored / args.batch_size)

        progress.print(f"[{backend}] anchor: executemany of the same {closed.stored:,} rows…")
        anchor = executemany_anchor(databases.fresh("anchor"), closed_work.rows[:n_batches])
        progress.print(f"[{backend}] in process: {args.in_process_batches} batches through Ingestor.ingest…")
        in_process = ingest_in_process(databases.fresh("inprocess"), closed_work, args.in_process_batches)
        mix: dict[str, int] = {}
        for batch in closed_work.rows[:n_batches]:
            for row in batch:
                mix[row["type"]] = mix.get(row["type"], 0) + 1
        return BackendResult(backend, opened, closed, anchor, mix, stitched, in_process)
    finally:
        databases.drop_all()


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.1f}"


def _verdict(value: str, passed: bool) -> str:
    return f"[green]{value} ✓[/green]" if passed else f"[red]{value} ✗[/red]"


def _cpu(phase: PhaseResult) -> str:
    return (
        f"{phase.server_cores:.2f} / {phase.generator_cores:.2f} / {phase.other_cores:.2f}"
        f" / {phase.stolen_cores:.2f}"
    )


def _mix(mix: dict[str, int]) -> str:
    total = sum(mix.values()) or 1
    return " ".join(
        f"{kind} {count / total:.0%}" for kind, count in sorted(mix.items(), key=lambda kv: -kv[1])
    )


def _integrity(phase: PhaseResult) -> str:
    lost = phase.acknowledged - phase.stored
    return f"{phase.errors} / {lost}" if phase.errors or lost else "0 / 0"


def print_table(results: list[BackendResult], args: argparse.Namespace) -> None:
    table = Table(
        title=f"/v1/batch ingestion: {args.batch_size} events per batch over loopback, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, {args.people:,} people known before, "
        f"{os.cpu_count()} CPUs, `serve --workers {args.workers}`",
        title_justify="left",
    )
    table.add_column("measure")
    for result in results:
        table.add_column(result.backend, justify="right")
    table.add_column("target", justify="right")

    def row(label: str, values: list[str], target: str = "") -> None:
        table.add_row(label, *values, target)

    p99_ok = [r.open_loop.p99_ms <= TARGET_P99_MS for r in results]
    rate_ok = [r.closed_loop.events_per_second >= TARGET_EVENTS_PER_SECOND for r in results]
    row(f"open loop, offered {args.rate:,.0f} events/s", ["" for _ in results])
    row("  achieved events/s", [f"{r.open_loop.events_per_second:,.0f}" for r in results])
    row(
        "  ack latency p50 / p90 ms",
        [f"{_ms(r.open_loop.p50_ms)} / {_ms(r.open_loop.p90_ms)}" for r in results],
    )
    row(
        "  ack latency p99 ms",
        [_verdict(_ms(r.open_loop.p99_ms), ok) for r, ok in zip(results, p99_ok, strict=True)],
        f"≤ {TARGET_P99_MS:.0f}",
    )
    row("  ack latency max ms", [_ms(r.open_loop.max_ms) for r in results])
    row("  failed requests / acked-not-stored", [_integrity(r.open_loop) for r in results])
    row("  server CPU ms per batch", [f"{r.open_loop.server_ms_per_batch:.1f}" for r in results])
    row("  cores: server/generator/other/stolen", [_cpu(r.open_loop) for r in results])
    row(f"closed loop, {args.clients} clients", ["" for _ in results])
    row(
        "  sustained events/s",
        [
            _verdict(f"{r.closed_loop.events_per_second:,.0f}", ok)
            for r, ok in zip(results, rate_ok, strict=True)
        ],
        f"≥ {TARGET_EVENTS_PER_SECOND:,.0f}",
    )
    row("  worst 1 s events/s", [f"{r.closed_loop.worst_second:,.0f}" for r in results])
    row(
        "  ack latency p50 / p99 ms",
        [f"{_ms(r.closed_loop.p50_ms)} / {_ms(r.closed_loop.p99_ms)}" for r in results],
    )
    row("  failed requests / acked-not-stored", [_integrity(r.closed_loop) for r in results])
    row("  server CPU ms per batch", [f"{r.closed_loop.server_ms_per_batch:.1f}" for r in results])
    row("  cores: server/generator/other/stolen", [_cpu(r.closed_loop) for r in results])
    row("  message mix", [_mix(r.mix) for r in results])
    row(
        "  people / ids / merges / refusals",
        [" / ".join(f"{r.stitching[k]:,}" for k in ("people", "ids", "merged", "refused")) for r in results],
    )
    row("anchor: executemany, 1 commit per batch", ["" for _ in results])
    row("  events/s", [f"{r.anchor.events_per_second:,.0f}" for r in results])
    row("  rows (those of the closed loop)", [f"{r.anchor.events:,}" for r in results])
    row("  CPU ms per batch", [f"{r.anchor.server_ms_per_batch:.1f}" for r in results])
    row("HTTP closed loop / anchor", [f"{r.ratio:.2f}" for r in results])
    row("in process: Ingestor.ingest, 1 thread", ["" for _ in results])
    row("  CPU ms per batch", [f"{r.in_process.cpu_ms_per_batch:.1f}" for r in results])
    row("  SQL statements per batch", [f"{r.in_process.statements_per_batch:.1f}" for r in results])
    row("  wall ms per batch", [f"{r.in_process.wall_ms_per_batch:.1f}" for r in results])
    console.print(table)
    for result in results:
        for phase in (result.open_loop, result.closed_loop):
            if phase.first_error:
                console.print(escape(f"[{result.backend}] {phase.name}: first error: {phase.first_error}"))
            if phase.server_problems:
                log = phase.server_problems
                console.print(escape(f"[{result.backend}] {phase.name}: server log:\n{log}"))
            if phase.ran_out:
                console.print(
                    escape(f"[{result.backend}] {phase.name} used every prepared batch; ")
                    + "raise --max-rate"
                )


def record_goals(results: list[BackendResult], args: argparse.Namespace) -> None:
    """Per backend: sustained events/s against the executemany anchor; ack p99 (no latency anchor)."""
    for r in results:
        record(
            "ingest_http",
            f"/v1/batch sustained events/s, closed loop, {args.clients} clients ({r.backend})",
            f"{r.closed_loop.events_per_second:,.0f} events/s",
            anchor=f"executemany {r.anchor.events_per_second:,.0f} events/s",
            ratio=r.ratio,
            goal=f">= {TARGET_EVENTS_PER_SECOND:,.0f} events/s",
            met=r.closed_loop.events_per_second >= TARGET_EVENTS_PER_SECOND,
        )
        record(
            "ingest_http",
            f"/v1/batch ack p99, open loop at {args.rate:,.0f} events/s ({r.backend})",
            f"{_ms(r.open_loop.p99_ms)} ms",
            goal=f"<= {TARGET_P99_MS:g} ms",
            met=r.open_loop.p99_ms <= TARGET_P99_MS,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=25.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase")
    parser.add_argument("--rate", type=float, default=5_000.0, help="open-loop offered events/s")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop concurrent clients")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="`shopkeeper serve --workers`: one per core is the recommended setup",
    )
    parser.add_argument(
        "--max-rate", type=float, default=15_000.0, help="events/s to prepare for the closed loop (a cap)"
    )
    parser.add_argument("--pg-url", default=os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL", DEFAULT_PG_URL))
    parser.add_argument(
        "--people", type=int, default=0, help="people already known before each phase (an identity graph)"
    )
    parser.add_argument(
        "--in-process-batches", type=int, default=300, help="batches for the in-process write-path phase"
    )
    parser.add_argument("--seed", type=int, default=20_241_129)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead")
    args = parser.parse_args(argv)

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="shopkeeper-bench-"))
    try:
        results = [run_backend(backend, args, workdir) for backend in backends]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record_goals(results, args)
    if args.json:
        payload = [
            {
                "backend": r.backend,
                "open_loop": asdict(r.open_loop),
                "closed_loop": asdict(r.closed_loop),
                "anchor": asdict(r.anchor),
                "http_over_anchor": r.ratio,
                "mix": r.mix,
                "stitching": r.stitching,
                "in_process": asdict(r.in_process),
            }
            for r in results
        ]
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_table(results, args)
    met = all(
        r.open_loop.p99_ms <= TARGET_P99_MS and r.closed_loop.events_per_second >= TARGET_EVENTS_PER_SECOND
        for r in results
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
