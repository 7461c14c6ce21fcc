"""Personas: discovery time on 100,000 people, and what it finds in the real Online Retail customers.

Per-customer inputs are built from the Online Retail file (`shared_data.ONLINE_RETAIL`): orders are the
distinct invoices that are not cancellations ('C'), revenue is the sum of quantity x price over every
line (cancellations subtract; clipped at 0 by the features), days are counted to the day after the last
date kept, rhythm is the median gap between a customer's orders, the country is the file's. Categories
are the top level of `shopkeeper.events.importers.categorize` on the descriptions, weighted by line
revenue decayed with a 90-day half-life. The file has no channels: every channel is "" (unknown).

1. Speed. The 4,300-odd real customers are resampled to 100,000 people with jitter (each figure times
   exp(N(0, 0.15)), orders kept), "simulated by resampling real customers", and `discover` is timed on
   them (the whole call: features, k selection, rules, 5 bootstraps). Anchor: one sklearn KMeans
   (n_clusters=6, n_init=1) fit + predict on the same feature matrix, in the same run. Goal: <= 30 s.
2. The real customers (data up to 2011-09-30): k, coverage, silhouette, stability, each persona.
3. Stability across seeds: the ARI between the labels of random_state 0 and 1, and their ks.
4. Stability across months: data up to 2011-08-31 against up to 2011-09-30, September's run matched to
   August's through `previous` (so August's number of personas is kept when acceptable): the ks, the
   matches, the largest moves, and the ARI on the customers of both.

`--quick` skips part 4 (part 1 keeps its 100,000 people and 5 bootstraps).

    .venv/bin/python benchmarks/personas.py [--file PATH] [--people 100000] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from goals import record
from rich.console import Console
from rich.table import Table
from shared_data import ONLINE_RETAIL
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from shopkeeper.events.importers.categorize import categorize
from shopkeeper.personas.clustering import Discovery, PersonaInputs, discover, feature_matrix

GOAL_SECONDS = 30.0
HALF_LIFE_DAYS = 90.0
MEASURE = "discover, 100,000 people (simulated by resampling)"


@dataclass(frozen=True)
class Line:
    invoice: str
    item: str
    quantity: float
    when: datetime
    price: float
    customer: str
    country: str


def read_lines(path: Path) -> tuple[list[Line], dict[str, str]]:
    """The file's lines with a customer id, and every stock code's description."""
    lines, titles = [], {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as source:
        for row in csv.DictReader(source):
            if row["Description"]:
                titles.setdefault(row["StockCode"], row["Description"])
            if not row["CustomerID"]:
                continue
            when = datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
            lines.append(
                Line(
                    row["InvoiceNo"],
                    row["StockCode"],
                    float(row["Quantity"]),
                    when,
                    float(row["UnitPrice"]),
                    row["CustomerID"].removesuffix(".0"),
                    row["Country"],
                )
            )
    return lines, titles


def build_inputs(
    lines: list[Line], categories_of: dict[str, str], until: datetime
) -> tuple[PersonaInputs, list[str]]:
    """Per-customer inputs from the lines before `until` (days counted to `until`), and the ids."""
    kept = [line for line in lines if line.when < until]
    customers = sorted({line.customer for line in kept})
    row = {customer: i for i, customer in enumerate(customers)}
    names = sorted(set(categories_of.values()))
    column = {name: j for j, name in enumerate(names)}
    n = len(customers)
    revenue, first, last = np.zeros(n), np.zeros(n), np.full(n, -np.inf)
    weights = np.zeros((n, len(names)))
    order_times: dict[int, set[float]] = defaultdict(set)
    country = [""] * n
    for line in kept:
        i = row[line.customer]
        days = (until - line.when).total_seconds() / 86400
        amount = line.quantity * line.price
        revenue[i] += amount
        first[i] = max(first[i], days)
        country[i] = line.country
        if not line.invoice.startswith("C") and line.quantity > 0:
            order_times[i].add(days)
            last[i] = days if last[i] == -np.inf else min(last[i], days)
            weights[i, column[categories_of.get(line.item, "Other")]] += amount * 0.5 ** (
                days / HALF_LIFE_DAYS
            )
    frequency = np.array([len(order_times[i]) for i in range(n)], dtype=np.float64)
    rhythm = np.array(
        [
            np.median(-np.diff(sorted(order_times[i], reverse=True))) if len(order_times[i]) >= 2 else np.nan
            for i in range(n)
        ]
    )
    recency = np.where(last == -np.inf, np.inf, last)
    inputs = PersonaInputs(
        recency_days=recency,
        frequency=frequency,
        monetary=revenue,
        tenure_days=first,
        rhythm_days=rhythm,
        categories=tuple(names),
        category_weights=weights,
        countries=np.array(country),
        channels=np.array([""] * n),
    )
    return inputs, customers


def resample(inputs: PersonaInputs, people: int, random_state: int = 0) -> PersonaInputs:
    """`people` people drawn with replacement from `inputs`, each figure jittered by exp(N(0, 0.15))."""
    rng = np.random.default_rng(random_state)
    rows = rng.choice(inputs.n, people, replace=True)

    def jitter(values: np.ndarray) -> np.ndarray:
        return values[rows] * np.exp(rng.normal(0, 0.15, people))

    recency = jitter(inputs.recency_days)
    tenure = np.maximum(jitter(inputs.tenure_days), np.where(np.isfinite(recency), recency, 0))
    weights = inputs.category_weights[rows] * np.exp(rng.normal(0, 0.15, (people, len(inputs.categories))))
    return PersonaInputs(
        recency_days=recency,
        frequency=inputs.frequency[rows],
        monetary=jitter(inputs.monetary),
        tenure_days=tenure,
        rhythm_days=jitter(inputs.rhythm_days),
        categories=inputs.categories,
        category_weights=weights,
        countries=inputs.countries[rows],
        channels=inputs.channels[rows],
    )


def money(value: float) -> str:
    return f"£{value:,.0f}"


def persona_table(title: str, found: Discovery) -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    for heading in (
        "#",
        "name",
        "size",
        "customers",
        "revenue",
        "rule",
        "agreement",
        "stability",
        "previous",
    ):
        table.add_column(
            heading, justify="right" if heading in ("#", "size", "agreement", "stability") else "left"
        )
    for group in found.groups:
        table.add_row(
            str(group.index),
            f"{group.name}\n[dim]{group.description}[/dim]",
            f"{group.size:,}",
            f"{group.share_customers:.0%}",
            f"{group.share_revenue:.0%}",
            group.rule,
            f"{group.rule_agreement:.2f}",
            "—"
            if group.stability is None
            else f"{group.stability:.2f}{'' if group.stable else ' (unstable)'}",
            "—" if group.previous is None else str(group.previous),
        )
    return table


def summary(found: Discovery) -> str:
    silhouette = "—" if found.silhouette is None else f"{found.silhouette:.3f}"
    ari = "—" if found.stability_ari is None else f"{found.stability_ari:.3f}"
    return (
        f"method {found.method}, k {found.k}, coverage {found.coverage:.0%}, silhouette {silhouette}, "
        f"bootstrap ARI {ari}, rule agreement {found.agreement:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=ONLINE_RETAIL)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="skip the month-to-month comparison")
    args = parser.parse_args()
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if not args.file.exists():
        console.print(f"not run: no data at {args.file} (SHOPKEEPER_SHARED_DATA names the datasets folder)")
        record("personas", MEASURE, "not run (no data)", goal=f"<= {GOAL_SECONDS:g} s")
        return

    started = time.perf_counter()
    lines, titles = read_lines(args.file)
    categories_of = {item: category.path.split(" > ")[0] for item, category in categorize(titles).items()}
    september, ids = build_inputs(lines, categories_of, datetime(2011, 10, 1))
    console.print(
        f"read {len(lines):,} lines, {september.n:,} customers in {time.perf_counter() - started:.1f} s"
    )

    big = resample(september, args.people)
    x, _names = feature_matrix(big)
    started = time.perf_counter()
    KMeans(n_clusters=6, n_init=1, random_state=0).fit(x).predict(x)
    anchor = time.perf_counter() - started
    started = time.perf_counter()
    found_big = discover(big, money=money)
    seconds = time.perf_counter() - started

    found = discover(september, money=money)
    other_seed = discover(september, money=money, random_state=1)
    seeds_ari = adjusted_rand_score(found.labels, other_seed.labels)

    table = Table(title="Personas (discover, the whole call)", title_justify="left")
    for heading in ("measure", "figure", "anchor", "ratio", "goal"):
        table.add_column(heading)
    table.add_row(
        f"discover, {args.people:,} people (simulated by resampling real customers)",
        f"{seconds:.1f} s ({summary(found_big)})",
        f"KMeans(6, n_init=1) fit+predict {anchor:.1f} s",
        f"{seconds / anchor:.1f}x",
        f"<= {GOAL_SECONDS:g} s",
    )
    table.add_row(f"real customers, up to 2011-09-30 ({september.n:,})", summary(found), "", "", "")
    table.add_row(
        "same data, random_state 0 vs 1",
        f"ARI of labels {seeds_ari:.3f} (k {found.k} and {other_seed.k})",
        "",
        "",
        "",
    )
    console.print(table)
    console.print(persona_table(f"Real customers up to 2011-09-30: {summary(found)}", found))
    console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    record(
        "personas",
        MEASURE,
        f"{seconds:.1f} s",
        anchor=f"KMeans(6, n_init=1) fit+predict {anchor:.1f} s",
        ratio=seconds / anchor,
        goal=f"<= {GOAL_SECONDS:g} s",
        met=seconds <= GOAL_SECONDS,
    )
    if not args.quick:
        months(console, lines, categories_of, ids)


def months(console: Console, lines: list[Line], categories_of: dict[str, str], ids: list[str]) -> None:
    """August's run against September's: matches, the largest moves, the ARI on common customers."""
    august, august_ids = build_inputs(lines, categories_of, datetime(2011, 9, 1))
    found_august = discover(august, money=money)
    label_of = dict(zip(august_ids, found_august.labels.tolist(), strict=True))
    previous = np.array([label_of.get(customer, -1) for customer in ids], dtype=np.int64)
    september, _ids = build_inputs(lines, categories_of, datetime(2011, 10, 1))
    found = discover(september, money=money, previous=previous)
    common = np.array([customer in label_of for customer in ids])
    ari = adjusted_rand_score(previous[common], found.labels[common])
    console.print(persona_table(f"Up to 2011-08-31: {summary(found_august)}", found_august))
    console.print(persona_table(f"Up to 2011-09-30, matched to August: {summary(found)}", found))
    names_then = {group.index: group.name for group in found_august.groups} | {-1: "everyone else"}
    names_now = {group.index: group.name for group in found.groups} | {-1: "everyone else"}
    moves = Table(title="The largest moves, August -> September", title_justify="left")
    for heading in ("people", "from (August)", "to (September)"):
        moves.add_column(heading)
    for move in found.churn[:8]:
        moves.add_row(f"{move.people:,}", names_then[move.previous], names_now[move.current])
    console.print(moves)
    console.print(
        f"k {found_august.k} -> {found.k}; "
        f"ARI between August's and September's labels on the {int(common.sum()):,} customers of both: "
        f"{ari:.3f}; "
        f"moved between unmatched groups: {sum(move.people for move in found.churn):,}"
    )


if __name__ == "__main__":
    main()
