"""The dashboard's pages: server time on the demo shop and on a big shop, against the same data as JSON.

Goals (issue 17): every page renders in at most 300 ms (p95) on the demo shop (`shopkeeper demo
--no-serve`), and in at most 1 s (p95) on a shop of 100,000 people and 1,000,000 events, SIMULATED BY
RESAMPLING the demo's real customers (`dashboard_support/big_shop.py` says how); and the ratio against
the same data served as JSON by the existing API, in the same run.

Each page is paired with the API route that serves its data (`PAIRS`); the users and audit pages have no
JSON twin, and are set against `GET /v1/experiments`, a light admin read, said so in the table. Both sides
are served by the one real app, in this process, over HTTP on 127.0.0.1 (`dashboard_support/live.py`):
the page asked by a logged-in owner, the JSON by an admin key. After a warm-up, the page and its JSON are
asked in turn (which goes first alternates), each request timed on the client from sending to the last
byte read; p50 and p95 of each, and the ratio page p95 / JSON p95 (p50 too, which is steadier). A page
that no route of the app answers does not exist yet and is reported "not built"; any status but 200 is
reported as it is. The pages whose slow figures are kept for a minute (`web/snapshots.py`: the overview,
the audiences and the holdout report) are also asked with `?fresh=1`, which computes them while the page
waits, as at the first view after an audience, a persona or an experiment changed: that "cold" p95 is
shown beside the steady state and recorded, not judged. A page that misses its goal is profiled (cProfile
on its handler, every SQL statement timed) and the top of that printed, to say where its time goes.

Both shops are built once and kept in benchmarks/results/dashboard/ (`dashboard_support/shops.py`);
each run measures a fresh copy. Building the big shop takes minutes (each step is timed and printed).

    .venv/bin/python benchmarks/dashboard.py [--quick] [--only NAME ...] [--profile NAME ...] [--skip-big]
        [--fresh] [--people 100000] [--events 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dashboard_support.big_shop import Shape
from dashboard_support.live import Answer, Live, ask, live, profiled, route_of
from dashboard_support.shops import Kept, big_shop, copy_of, demo_shop
from goals import record
from rich.console import Console
from rich.markup import escape
from rich.table import Table

PERSON = "17850"  # a real customer of the sample, in both shops (the big one keeps the demo's people)
AUDIENCE = "wrap-regulars"  # the demo's saved audience, saved again over the big shop
STAND_IN = "no JSON twin; stand-in"


@dataclass(frozen=True)
class Pair:
    name: str
    page: str
    method: str
    json: str
    body: dict[str, str] | None = None
    note: str = ""  # how the JSON side relates to the page, when it is not the same data
    kept: bool = False  # its slow figures are kept (web/snapshots.py): measured cold too, with ?fresh=1

    def fresh(self) -> str:
        return self.page + ("&" if "?" in self.page else "?") + "fresh=1"


PAIRS = [
    Pair("overview", "/dashboard", "GET", "/v1/experiments/holdout/report", kept=True),
    Pair("people search", f"/dashboard/people?q={PERSON}", "GET", f"/v1/people/{PERSON}"),
    Pair("person", f"/dashboard/people/{PERSON}", "GET", f"/v1/people/{PERSON}/explain"),
    Pair("personas", "/dashboard/personas", "GET", "/v1/personas"),
    Pair("audiences", "/dashboard/audiences", "GET", "/v1/audiences", kept=True),
    Pair("one audience", f"/dashboard/audiences/{AUDIENCE}", "GET", f"/v1/audiences/{AUDIENCE}", kept=True),
    Pair("experiments", "/dashboard/experiments", "GET", "/v1/experiments"),
    Pair(
        "holdout report", "/dashboard/experiments/holdout", "GET", "/v1/experiments/holdout/report", kept=True
    ),
    Pair("moments", "/dashboard/moments", "GET", "/v1/moments/rules"),
    Pair("inbox", "/dashboard/inbox", "GET", "/v1/tasks"),
    Pair("content", "/dashboard/content/picked_for_you", "GET", "/v1/templates/picked_for_you"),
    Pair(
        "recommendations",
        f"/dashboard/recommendations?person={PERSON}",
        "POST",
        "/v1/decide",
        {"userId": PERSON},
    ),
    Pair("users", "/dashboard/users", "GET", "/v1/experiments", note=STAND_IN),
    Pair("audit", "/dashboard/audit", "GET", "/v1/experiments", note=STAND_IN),
]


@dataclass(frozen=True)
class Effort:
    """How hard to try per pair: warm-up asks, then up to `repeats` rounds or `seconds`, at least `least`."""

    warmup: int
    repeats: int
    seconds: float
    least: int
    profile: int  # requests profiled when the page misses its goal


EFFORT = {
    ("demo", False): Effort(warmup=5, repeats=100, seconds=30, least=20, profile=5),
    ("demo", True): Effort(warmup=2, repeats=25, seconds=6, least=10, profile=3),
    ("big", False): Effort(warmup=3, repeats=40, seconds=90, least=10, profile=3),
    ("big", True): Effort(warmup=1, repeats=10, seconds=8, least=3, profile=1),
}
GOAL_SECONDS = {"demo": 0.3, "big": 1.0}


@dataclass
class Row:
    pair: Pair
    status: str  # "ok", "not built", or what went wrong
    page: list[float] = field(default_factory=list)
    json: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)  # the page with its kept figures computed afresh
    page_bytes: int = 0
    json_bytes: int = 0

    def p(self, side: str, q: float) -> float:
        return float(np.percentile(getattr(self, side), q))

    def slowest(self) -> float:
        """The page's p95, or its cold p95 when that is longer."""
        return max(self.p("page", 95), self.p("cold", 95) if self.cold else 0.0)

    @property
    def ratio(self) -> float:
        return self.p("page", 95) / self.p("json", 95)

    @property
    def ratio_p50(self) -> float:
        return self.p("page", 50) / self.p("json", 50)


def measure(site: Live, pair: Pair, effort: Effort) -> Row:
    """A pair's timings, page and JSON in turn, or why it was not measured."""
    if route_of(site.app, pair.page) is None:
        return Row(pair, "not built")
    page = ask(site.page, "GET", pair.page)
    json_side = ask(site.api, pair.method, pair.json, pair.body)
    wrong = [
        f"{side} {a.status}: {_gist(a)}"
        for side, a in (("page", page), ("JSON", json_side))
        if a.status != 200
    ]
    if wrong:
        return Row(pair, "; ".join(wrong))
    row = Row(pair, "ok", page_bytes=page.size, json_bytes=json_side.size)
    for _ in range(effort.warmup):
        ask(site.page, "GET", pair.page)
        ask(site.api, pair.method, pair.json, pair.body)
    started = time.perf_counter()
    for round_ in range(effort.repeats):
        if round_ >= effort.least and time.perf_counter() - started > effort.seconds:
            break
        sides = [
            ("page", site.page, "GET", pair.page, None),
            ("json", site.api, pair.method, pair.json, pair.body),
        ]
        for side, client, method, path, body in sides if round_ % 2 == 0 else reversed(sides):
            answer = ask(client, method, path, body)
            if answer.status != 200:
                return Row(pair, f"{side} answered {answer.status} while timed: {_gist(answer)}")
            getattr(row, side).append(answer.seconds)
    for _ in range(effort.least if pair.kept else 0):
        answer = ask(site.page, "GET", pair.fresh())
        if answer.status != 200:
            return Row(pair, f"page with fresh=1 answered {answer.status}: {_gist(answer)}")
        row.cold.append(answer.seconds)
    return row


def _gist(answer: Answer) -> str:
    return " ".join(answer.text.split())[:160]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def run_shop(
    shop: str, kept: Kept, pairs: list[Pair], quick: bool, console: Console, profile: set[str]
) -> None:
    effort = EFFORT[(shop, quick)]
    goal = GOAL_SECONDS[shop]
    with tempfile.TemporaryDirectory(prefix=f"shopkeeper-dashboard-{shop}-") as tmp:
        started = time.perf_counter()
        path = copy_of(kept, Path(tmp))
        copied = time.perf_counter() - started
        with live(path) as site:
            console.print(f"{shop} shop: copied for this run in {copied:.1f} s")
            rows = []
            for pair in pairs:
                rows.append(measure(site, pair, effort))
                console.print(f"  {pair.name}: {_line(rows[-1])}", highlight=False)
            print_table(shop, kept, rows, goal, effort, console)
            record_goals(shop, rows, goal)
            for row in rows:
                if row.status == "ok" and (row.slowest() > goal or row.pair.name in profile):
                    print_profile(shop, site, row, effort, console)


def _line(row: Row) -> str:
    if row.status != "ok":
        return row.status
    return f"page p95 {ms(row.p('page', 95))} ms, JSON p95 {ms(row.p('json', 95))} ms ({len(row.page)} each)"


def print_table(
    shop: str, kept: Kept, rows: list[Row], goal: float, effort: Effort, console: Console
) -> None:
    label = "the demo shop"
    if shop == "big":
        held = kept.counts
        label = (
            f"the big shop, SIMULATED BY RESAMPLING the demo's real customers: {held['people']:,} people, "
            f"{held['events']:,} events, {held['interactions']:,} interactions, "
            f"{held['decisions']:,} decisions"
        )
    table = Table(
        title=f"Dashboard pages on {label} (ms, client-timed on localhost; up to {effort.repeats} rounds "
        f"after {effort.warmup} warm-up)",
        title_justify="left",
    )
    for column in (
        "page",
        "page p50",
        "page p95",
        "page KB",
        "JSON route",
        "JSON p50",
        "JSON p95",
        "JSON KB",
        "cold p95",
        "ratio p95",
        "ratio p50",
        "n",
        "goal",
        "met",
    ):
        table.add_column(column, justify="left" if column in ("page", "JSON route", "goal") else "right")
    for row in rows:
        pair = row.pair
        route = f"{pair.method} {pair.json}" + (f" ({pair.note})" if pair.note else "")
        if row.status != "ok":
            table.add_row(escape(pair.page), escape(row.status), "", "", escape(route), *[""] * 8, "—")
            continue
        met = row.p("page", 95) <= goal
        table.add_row(
            escape(pair.page),
            ms(row.p("page", 50)),
            ms(row.p("page", 95)),
            f"{row.page_bytes / 1024:,.0f}",
            escape(route),
            ms(row.p("json", 50)),
            ms(row.p("json", 95)),
            f"{row.json_bytes / 1024:,.0f}",
            ms(row.p("cold", 95)) if row.cold else "—",
            f"{row.ratio:,.1f}x",
            f"{row.ratio_p50:,.1f}x",
            str(len(row.page)),
            f"<= {goal * 1000:,.0f}",
            "yes" if met else "NO",
            style=None if met else "red",
        )
    console.print(table)
    console.print(
        "cold p95: the pages whose slow figures are kept (SHOPKEEPER_DASHBOARD_SNAPSHOT_SECONDS, 60 s), "
        "asked with ?fresh=1 so that they are computed while the page waits, as at the first view after an "
        f"audience, a persona or an experiment changed ({effort.least} asks each); page p95 is the steady "
        "state, where kept figures are refreshed in the background."
    )


def record_goals(shop: str, rows: list[Row], goal: float) -> None:
    where = "demo shop" if shop == "demo" else "100k people, 1M events, simulated by resampling"
    target = f"p95 <= {goal * 1000:,.0f} ms"
    for row in rows:
        measure_name = f"{row.pair.name} page p95 ({where})"
        if row.status != "ok":
            record(
                "dashboard",
                measure_name,
                row.status,
                goal=target,
                met=None if row.status == "not built" else False,
            )
            continue
        twin = "stand-in" if row.pair.note else "JSON"
        record(
            "dashboard",
            measure_name,
            f"{ms(row.p('page', 95))} ms",
            anchor=f"{twin} {row.pair.method} {row.pair.json} p95 {ms(row.p('json', 95))} ms",
            ratio=row.ratio,
            goal=target,
            met=row.p("page", 95) <= goal,
        )
        if row.cold:
            record(
                "dashboard",
                f"{row.pair.name} page p95, figures computed afresh ({where})",
                f"{ms(row.p('cold', 95))} ms",
                anchor=f"the page with its figures kept p95 {ms(row.p('page', 95))} ms",
                ratio=row.p("cold", 95) / row.p("page", 95),
                goal="not judged: the first view after a definition changed, or when asked",
                met=None,
            )


def print_profile(shop: str, site: Live, row: Row, effort: Effort, console: Console) -> None:
    """Where a slow page's time goes: its handler's functions, and the SQL it sends, slowest first."""
    pair = row.pair
    path = pair.fresh() if pair.kept else pair.page  # a kept page's time is in computing its figures
    found = profiled(site, pair.page, effort.profile, lambda: ask(site.page, "GET", path))
    n = found.requests
    missed = "takes longer than the goal" if row.slowest() > GOAL_SECONDS[shop] else "(asked for)"
    console.print(f"\n[bold]{escape(path)}[/bold] on the {shop} shop {missed}: {n} requests profiled")
    total = sum(seconds for seconds, _, _ in found.statements)
    count = sum(times for _, times, _ in found.statements) // n
    console.print(
        f"SQL, each statement timed to its first row (fetching and using the rows is in the functions "
        f"below): {total / n * 1000:,.0f} ms a request, in {count} statements; the slowest:"
    )
    for seconds, times, sql in found.statements[:6]:
        share = f"{seconds / n * 1000:8,.0f} ms a request, {times // n}x"
        console.print(f"  {share}: {escape(sql[:300])}", highlight=False)
    console.print(escape(found.functions), highlight=False)


def print_builds(shops: dict[str, Kept], console: Console) -> None:
    table = Table(title="The shops measured (kept in benchmarks/results/dashboard/)", title_justify="left")
    for column in ("shop", "built", "step", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for name, kept in shops.items():
        when = f"{'now' if kept.new else 'kept, built'} {kept.built[:16]}"
        for step, seconds in kept.seconds.items():
            table.add_row(name, when, escape(step), f"{seconds:,.0f}")
        if kept.counts:
            table.add_row(
                name,
                when,
                "holds",
                escape(
                    ", ".join(f"{k} {v:,}" if isinstance(v, int) else str(v) for k, v in kept.counts.items())
                ),
            )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and seconds per page")
    names = [pair.name for pair in PAIRS]
    parser.add_argument("--only", nargs="+", choices=names, default=None)
    parser.add_argument("--skip-big", action="store_true", help="the demo shop only")
    parser.add_argument("--fresh", action="store_true", help="build both shops again")
    parser.add_argument(
        "--profile", nargs="+", choices=names, default=[], help="profile these pages even when they meet it"
    )
    parser.add_argument("--people", type=int, default=Shape.people)
    parser.add_argument("--events", type=int, default=Shape.events)
    args = parser.parse_args()
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)
    pairs = [pair for pair in PAIRS if args.only is None or pair.name in args.only]
    say = console.print
    shops = {"demo": demo_shop(fresh=args.fresh, say=say)}
    if not args.skip_big:
        shops["big"] = big_shop(shops["demo"], Shape(args.people, args.events), fresh=args.fresh, say=say)
    print_builds(shops, console)
    if "big" in shops:
        big = shops["big"]
        when = "this run" if big.new else f"kept from {big.built[:16]}"
        for step, seconds in big.seconds.items():
            record("dashboard", f"big shop build: {step}", f"{seconds:,.0f} s ({when})")
    for name, kept in shops.items():
        run_shop(name, kept, pairs, args.quick, console, set(args.profile))
    if args.skip_big:
        for pair in pairs:
            record(
                "dashboard",
                f"{pair.name} page p95 (100k people, 1M events)",
                "not run (--skip-big)",
                goal="p95 <= 1,000 ms",
            )


if __name__ == "__main__":
    main()
