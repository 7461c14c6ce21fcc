"""Guarded content: emails rendered per second with every guard, and a template's preview latency.

A fresh SQLite shop gets the bundled Online Retail sample (real orders, replayed to end now), a trained
model and the two shipped templates. The sample has no names, so each customer measured is given a first
name through `identify` (observed; a rotating list with ALL CAPS, lower case, full names, placeholders and
non-Latin scripts, so that the slot check takes its slow paths too) and a stated size. Those names are
made up for the benchmark; the orders, items and picks are the sample's own.

1. Rendering: `back_in_stock` for a batch of customers, each with a real catalog item, through
   `ContentService.render` (profile resolution of the fields' traits, consent, slot checks, the sandbox,
   escaping, the signed preference link, CSS inlining, the text part), with the profiles already built.
   Measured in one process and in two (each its own shop on the same file, half the batch each), as
   emails/s. The anchor, timed in the same run: bare Jinja2 (`Environment(autoescape=True)`) rendering the
   same subject, preheader and HTML with the same values, already resolved. Goal: >= 2,000 emails/s on 2
   cores.
2. Preview: `picked_for_you` for 10 real customers and the built-in hostile profiles (decide's picks, not
   logged), repeated; p95 latency. Goal: p95 <= 300 ms.

    .venv/bin/python benchmarks/content.py [--people 2000] [--previews 30] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from goals import record
from jinja2 import Environment
from rich.console import Console
from rich.table import Table

from shopkeeper.content import EXAMPLES
from shopkeeper.events.importers import import_orders, open_sample
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

GOAL_EMAILS_PER_SECOND = 2000
GOAL_PREVIEW_P95_MS = 300.0
NAMES = [
    "Anna",
    "JOHN",
    "mcdonald",
    "Lester Wunderman",
    "Test",
    "José",
    "O'Brien",
    "محمد",
    "Jean-Luc",
    "siobhan",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prepare(url: str, people: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The shop: the sample, a model, the templates, and a name and size for each measured customer."""
    with Shop.from_settings(Settings(database_url=url)) as shop:
        with open_sample() as source:
            import_orders(shop.store, source, replay_until=datetime.now(UTC))
        shop.train()
        shop.content.load(EXAMPLES, by="benchmark")
        customers = shop.store.interactions.busiest_buyers(people)
        shop.ingest(
            [
                {"type": "identify", "userId": c, "traits": {"firstName": NAMES[n % len(NAMES)]}}
                for n, c in enumerate(customers)
            ]
        )
        for c in customers:
            shop.state_preferences(c, {"size": "M"})
        picks = shop.decide(anonymous_id="benchmark", placement="web", n=20).items
        items = []
        for chosen in picks:
            item = shop.store.catalog.get(chosen.item_id)
            items.append(
                {
                    "item_id": item.item_id,
                    "title": chosen.title,
                    "price": item.price,
                    "currency": item.currency or "GBP",
                    "url": f"https://shop.example/items/{item.item_id}",
                }
            )
        for c in customers:  # the profiles built, as in a running shop
            shop.profiles.traits_of(shop.store.identities.find_person(c) or 0)
    return customers, items


def render_batch(url: str, customers: list[str], items: list[dict[str, Any]]) -> tuple[float, int]:
    """Seconds to render `back_in_stock` for every customer (after one warm-up), and how many aborted."""
    with Shop.from_settings(Settings(database_url=url)) as shop:
        content = shop.content
        content.render("back_in_stock", customers[0], {"item": items[0]})
        aborted = 0
        started = time.perf_counter()
        template = content.prepare("back_in_stock")  # a batch renders one version, read once
        for n, customer in enumerate(customers):
            message = content.render(template, customer, {"item": items[n % len(items)]})  # as a send
            aborted += message.aborted is not None
        return time.perf_counter() - started, aborted


def _worker(args: tuple[str, list[str], list[dict[str, Any]]]) -> tuple[float, int]:
    return render_batch(*args)


def bare_jinja(customers: list[str], items: list[dict[str, Any]]) -> float:
    """The anchor: the same parts, with Jinja2's plain environment and the values already resolved."""
    template = orjson.loads((EXAMPLES / "back_in_stock.json").read_bytes())
    env = Environment(autoescape=True)
    parts = [env.from_string(template[p]) for p in ("subject", "preheader", "html")]
    values = [
        {
            "first_name": NAMES[n % len(NAMES)],
            "size": "M",
            "shop_name": "us",
            "preferences_url": "http://127.0.0.1:8000/preferences#token=pt2.x",
            "item": items[n % len(items)],
        }
        for n in range(len(customers))
    ]
    started = time.perf_counter()
    for context in values:
        for part in parts:
            part.render(context)
    return time.perf_counter() - started


def previews(url: str, customers: list[str], runs: int) -> list[float]:
    with Shop.from_settings(Settings(database_url=url)) as shop:
        shop.content.preview("picked_for_you", customers[:10], hostile=True)  # warm
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            shop.content.preview("picked_for_you", customers[:10], hostile=True)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--previews", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1,000 people, 15 previews")
    args = parser.parse_args()
    people, runs = (1000, 15) if args.quick else (args.people, args.previews)
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with console.status("Preparing the shop (sample, model, templates, names)"):
            customers, items = prepare(url, people)
        anchor_seconds = bare_jinja(customers, items)
        one_seconds, aborted = render_batch(url, customers, items)
        halves = [(url, customers[::2], items), (url, customers[1::2], items)]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            started = time.perf_counter()
            done = pool.map(_worker, halves)
            two_wall = time.perf_counter() - started
        two_seconds = max(seconds for seconds, _ in done)  # each worker's own loop, its shop already open
        preview_ms = previews(url, customers, runs)
    n = len(customers)
    one_rate, two_rate, anchor_rate = n / one_seconds, n / two_seconds, n / anchor_seconds
    p95 = percentile(preview_ms, 0.95)
    table = Table(title="Guarded content (SQLite, the bundled sample)", title_justify="left")
    for column in ("measure", "figure", "anchor", "ratio", "goal"):
        table.add_column(column)
    table.add_row(
        f"render back_in_stock, 1 process ({n:,} customers; {aborted} not produced)",
        f"{one_rate:,.0f} emails/s",
        f"bare Jinja2 {anchor_rate:,.0f} emails/s",
        f"{anchor_rate / one_rate:.1f}x",
        "",
    )
    table.add_row(
        "render back_in_stock, 2 processes",
        f"{two_rate:,.0f} emails/s",
        f"bare Jinja2 {anchor_rate:,.0f} emails/s (1 process)",
        f"{anchor_rate / two_rate:.1f}x",
        f">= {GOAL_EMAILS_PER_SECOND:,} emails/s",
    )
    table.add_row(
        f"preview picked_for_you: 10 customers + hostile set ({runs} runs)",
        f"p50 {statistics.median(preview_ms):.0f} ms, p95 {p95:.0f} ms",
        "",
        "",
        f"p95 <= {GOAL_PREVIEW_P95_MS:.0f} ms",
    )
    console.print(table)
    console.print(f"(2 processes: {two_wall:.2f} s wall for the pool, its start included)")
    record(
        "content",
        "render with every guard, 2 processes (back_in_stock, SQLite)",
        f"{two_rate:,.0f} emails/s",
        anchor=f"bare Jinja2 {anchor_rate:,.0f} emails/s",
        ratio=round(anchor_rate / two_rate, 2),
        goal=f">= {GOAL_EMAILS_PER_SECOND:,} emails/s",
        met=two_rate >= GOAL_EMAILS_PER_SECOND,
    )
    record(
        "content",
        "preview p95: picked_for_you, 10 customers + the hostile set",
        f"{p95:.0f} ms",
        goal=f"<= {GOAL_PREVIEW_P95_MS:.0f} ms",
        met=p95 <= GOAL_PREVIEW_P95_MS,
    )


if __name__ == "__main__":
    main()
