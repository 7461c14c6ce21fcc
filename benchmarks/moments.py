"""Moments and outreach: a restock to its queued message under ingest load, a large restock, and sending.

Every shop here is simulated: a fresh SQLite file in a temporary folder, a made-up catalog of sized
shirts (sizes XS to XL, stock per variant), made-up people (`identify` with an email) whose wishes come
from `Back In Stock Requested` events read by the moment engine, and a made-up stream of events. The
shops set `quiet_hours` "" (nothing held for the night) and `holdout_share` 0 (nobody held out), and
keep the default contact budget (1 a day, 2 a week), which every person here stays within: each gets
one message. The default rules are on; `back_in_stock` goes to the staff inbox (parts 1 and 2) or, in
part 3, is replaced by the same rule on email.

1. Restock to queued message while ingesting 1,000 events/s. The engine and the outbox worker run as a
   `shopkeeper worker` does (`channels.worker.run`), in a process of their own; the events go in through
   `Shop.ingest` (in process, batches of 100 ten times a second, from a thread: views, carts, pages,
   identifies and orders over 5,000 visitors) while another thread restocks a wished variant (0 -> 10
   units, 5 wishes each) four times a second. Latency, per restock: from the catalog upsert's commit to
   the moment its outbox rows are visible to a reader (polled every 10 ms). Anchor: the same measure
   with nothing ingested, in the same run. Goal: p99 <= 1 s.
2. One catalog upsert of 10,000 variants (2,000 items x 5 sizes, all to stock 20) that brings back 1,000
   variants (size M of 1,000 items, from 0) wished by 20,000 people (20 each): the time from its commit
   until `engine.step()` has caught up, every trigger evaluated and every moment in the outbox. Anchor:
   one hand-written SQL statement that joins the restocked variants to their open wishes and inserts one
   outbox row per match (rolled back), in the same run. Goal: <= 5 s.
3. Email moments sent by one `OutboxWorker` (its `deliver()` passes, each message's attempt and outcome
   committed) to a local aiosmtpd server in another process that only counts; first as the engine
   makes them (rendered through the guarded content layer at send), then already rendered (a second
   group's moments given the first group's rendered content beforehand, as a retry finds them). The
   people stated their size (the template says it) with the event the preference centre writes.
   Anchor: `smtplib` sending the same messages, as the server received them, in a bare loop over one
   connection, in the same run. Goal: >= 200 messages/s.

`--quick` runs part 1 for 10 s, part 2 at a tenth of its size (judged against a tenth of its goal: the
engine's work is per moment), and part 3 with 500 messages.

    .venv/bin/python benchmarks/moments.py [--seconds 30] [--people 20000] [--messages 2000] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goals import record
from moments_support.sending import SendResult, sending
from moments_support.shop import (
    SIZES,
    WISHED_SIZE,
    add_wishers,
    catch_up,
    outbox_counts,
    percentile,
    settings_for,
    shirt,
    upsert,
)
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from shopkeeper.catalog.items import parse_items
from shopkeeper.channels.worker import run
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

GOAL_LATENCY_P99 = 1.0  # seconds, restock to queued message
GOAL_RESTOCK_SECONDS = 5.0
GOAL_SEND_RATE = 200.0  # messages/s
INGEST_RATE = 1000  # events/s
INGEST_BATCH = 100
RESTOCKS_PER_SECOND = 4
WISHES_PER_RESTOCK = 5
VISITORS = 5000
POLL = 0.01  # seconds between reads of the outbox


# ---- 1. restock to queued message, under ingest load ---------------------------------------------------


def traffic(n: int, items: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    """`n` simulated events in batches: views 60%, carts 10%, pages 15%, identifies 10%, orders 5%."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for k in range(n):
        user = f"v{rng.randrange(VISITORS)}"
        item_id = f"b{rng.randrange(items)}"
        product = {"product_id": item_id, "variant_id": f"{item_id}-{rng.choice(SIZES)}", "price": 45.0}
        roll = rng.random()
        if roll < 0.60:
            events.append({"type": "track", "userId": user, "event": "Product Viewed", "properties": product})
        elif roll < 0.70:
            events.append({"type": "track", "userId": user, "event": "Product Added", "properties": product})
        elif roll < 0.85:
            events.append(
                {"type": "page", "userId": user, "name": "Shirts", "properties": {"path": "/shirts"}}
            )
        elif roll < 0.95:
            traits = {"email": f"{user}@example.com", "plan": rng.choice(("free", "club"))}
            events.append({"type": "identify", "userId": user, "traits": traits})
        else:
            order = {"order_id": f"o{k}", "revenue": 45.0, "products": [{**product, "quantity": 1}]}
            events.append({"type": "track", "userId": user, "event": "Order Completed", "properties": order})
    return [events[i : i + INGEST_BATCH] for i in range(0, n, INGEST_BATCH)]


def engine_process(settings: dict[str, Any], ready: Any, stop: Any) -> None:
    """A `shopkeeper worker`: the moment engine and the outbox worker, in their production loop."""
    with Shop.from_settings(Settings(**settings)) as shop:
        shop.moments.engine.daily()
        shop.moments.engine.step()
        ready.set()
        run(shop.moments.engine, shop.worker(), stop=stop.is_set)


@contextmanager
def engine_running(settings: Settings) -> Iterator[None]:
    """The engine process, started and ready; stopped on the way out."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    wanted = settings.model_dump(include={"database_url", "quiet_hours", "holdout_share"})
    process = context.Process(target=engine_process, args=(wanted, ready, stop))
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the engine process did not start within a minute")
        yield
    finally:
        stop.set()
        process.join(30)


@dataclass
class Restocks:
    """Restocks made (change id -> commit time) and when their outbox rows were first seen."""

    committed: dict[int, float] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latencies(self, ids: list[int]) -> list[float]:
        return [self.seen[c] - self.committed[c] for c in ids if c in self.seen]

    def wait_for(self, ids: list[int], seconds: float) -> None:
        """Until every one of these restocks has its outbox rows, or `seconds` have passed."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and any(c not in self.seen for c in ids):
            time.sleep(0.05)


def restock_one(shop: Shop, item_id: str) -> int:
    """Bring the wished variant of `item_id` back (0 -> 10 units); the id of its change."""
    parsed = parse_items([shirt(int(item_id[1:]), "r", lambda s: 10 if s == WISHED_SIZE else 5)])
    shop.store.catalog.upsert(parsed)
    with shop.store.engine.connect() as conn:
        found = conn.scalar(
            text("SELECT max(id) FROM item_history WHERE item_id = :i AND field = 'stock'"), {"i": item_id}
        )
    return int(found)


def restock_for(shop: Shop, restocks: Restocks, items: list[str], seconds: float) -> list[int]:
    """Restock `items` one by one, RESTOCKS_PER_SECOND, for at most `seconds`; their change ids."""
    made = []
    started = time.perf_counter()
    for n, item_id in enumerate(items):
        wait = started + n / RESTOCKS_PER_SECOND - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        if time.perf_counter() - started >= seconds:
            break
        change = restock_one(shop, item_id)
        with restocks.lock:
            restocks.committed[change] = time.time()
        made.append(change)
    return made


@contextmanager
def watching_outbox(shop: Shop) -> Iterator[Restocks]:
    """A thread that notes when each restock's outbox rows are first visible to a reader (polling)."""
    restocks, stop = Restocks(), threading.Event()
    query = text("SELECT id, dedupe FROM outbox WHERE id > :last ORDER BY id")

    def poll() -> None:
        last = 0
        while not stop.is_set():
            with shop.store.engine.connect() as conn:
                rows = conn.execute(query, {"last": last}).all()
            now = time.time()
            with restocks.lock:
                for row_id, dedupe in rows:  # back_in_stock:RULE:WISH:CHANGE
                    last, restocks.rows = row_id, restocks.rows + 1
                    if dedupe.startswith("back_in_stock:"):
                        restocks.seen.setdefault(int(dedupe.rsplit(":", 1)[1]), now)
            time.sleep(POLL)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield restocks
    finally:
        stop.set()
        thread.join()


@contextmanager
def ingesting(shop: Shop, batches: list[list[dict[str, Any]]]) -> Iterator[list[int]]:
    """A thread that ingests `batches` at INGEST_RATE until the block ends; yields [events so far]."""
    stop, done = threading.Event(), [0]

    def ingest() -> None:
        every = INGEST_BATCH / INGEST_RATE
        started = time.perf_counter()
        for n, batch in enumerate(batches):
            wait = started + n * every - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if stop.is_set():
                break
            shop.ingest(batch)
            done[0] += len(batch)

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()


def bare_steps(shop: Shop, n: int = 200) -> float:
    """The median seconds of `engine.step()` on a log with nothing new."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        shop.moments.engine.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class LatencyResult:
    idle_step: float  # a bare engine.step() on an idle log, seconds
    idle: list[float]  # restock latencies with nothing ingested
    loaded: list[float]  # ... while ingesting
    restocks: int
    ingested: int
    ingest_seconds: float
    rows: int  # outbox rows seen, every rule's

    @property
    def rate(self) -> float:
        return self.ingested / self.ingest_seconds


def prepare_load(shop: Shop, restocks: int) -> list[str]:
    """The browsed catalog, and `restocks` items whose wished size is out of stock, each wished for by
    WISHES_PER_RESTOCK people; the wished items."""
    upsert(shop, [shirt(n, "b", lambda s: 5) for n in range(500)])
    upsert(shop, [shirt(n, "r", lambda s: 0 if s == WISHED_SIZE else 5) for n in range(restocks)])
    shop.moments.engine.step()  # the engine's cursors at the log's end
    wished = [f"r{n}" for n in range(restocks)]
    add_wishers(shop, "w", restocks * WISHES_PER_RESTOCK, wished)
    return wished


def under_load(folder: Path, seconds: float, console: Console) -> LatencyResult:
    settings = settings_for(folder)
    with Shop.from_settings(settings) as shop:
        with console.status("Part 1: the shop (catalog, wishes)"):
            wished = prepare_load(shop, int(seconds * RESTOCKS_PER_SECOND) + 20)
            batches = traffic(int((seconds + 4) * INGEST_RATE), 500)
            idle_step = bare_steps(shop)
        with engine_running(settings), watching_outbox(shop) as restocks:
            with console.status("Part 1: restocks with nothing ingested (the anchor)"):
                warm = restock_for(shop, restocks, wished[:2], 1)  # the worker's first task loads decide
                restocks.wait_for(warm, 30)
                idle = restock_for(shop, restocks, wished[2:10], 8 / RESTOCKS_PER_SECOND + 1)
                restocks.wait_for(idle, 30)
            status = f"Part 1: restocks while ingesting {INGEST_RATE:,} events/s for {seconds:.0f} s"
            with console.status(status), ingesting(shop, batches) as ingested:
                time.sleep(2)  # warm-up
                before, started = ingested[0], time.perf_counter()
                loaded = restock_for(shop, restocks, wished[10:], seconds)
                ingest_seconds, events = time.perf_counter() - started, ingested[0] - before
            restocks.wait_for(loaded, 30)
    return LatencyResult(
        idle_step=idle_step,
        idle=restocks.latencies(idle),
        loaded=restocks.latencies(loaded),
        restocks=len(loaded),
        ingested=events,
        ingest_seconds=ingest_seconds,
        rows=restocks.rows,
    )


# ---- 2. a large restock --------------------------------------------------------------------------------


@dataclass
class RestockResult:
    variants: int
    restocked: int
    people: int
    upsert_seconds: float
    steps: list[float]
    anchor_seconds: float
    anchor_rows: int
    counts: dict[str, int]

    @property
    def seconds(self) -> float:
        return sum(self.steps)


ANCHOR_SQL = text(
    """
    INSERT INTO outbox (person_id, rule, "trigger", channel, status, dedupe, item_id, variant_id, wish_id,
                        priority, transactional, context, template, message_id, attempts,
                        created_at, due_at, updated_at)
    SELECT w.person_id, 'back_in_stock', 'back_in_stock', 'staff', 'pending',
           'anchor:' || w.id || ':' || h.id, h.item_id, h.variant_id, w.id, 80, 0, '{}', 'back_in_stock',
           '<anchor-' || w.id || '-' || h.id || '@shopkeeper>', 0, :now, :now, :now
    FROM item_history h JOIN wishes w ON w.item_id = h.item_id AND w.variant_id = h.variant_id
    WHERE h.id > :after AND h.field = 'stock' AND (h.old_value IS NULL OR h.old_value <= 0)
      AND h.new_value > 0 AND w.status IN ('open', 'notified') AND w.expires_at > :now
    """
)


def sql_anchor(shop: Shop, after: int) -> tuple[float, int]:
    """The anchor: join restocked variants to their wishes and insert a row per match, then roll back."""
    with shop.store.engine.connect() as conn:
        transaction = conn.begin()
        started = time.perf_counter()
        made = conn.execute(ANCHOR_SQL, {"after": after, "now": datetime.now(UTC)}).rowcount
        seconds = time.perf_counter() - started
        transaction.rollback()
    return seconds, made


def large_restock(folder: Path, people: int, console: Console) -> RestockResult:
    items, wished = people // 10, people // 20  # 20,000 people: 2,000 items, 1,000 wished variants
    with Shop.from_settings(settings_for(folder)) as shop:
        with console.status(f"Part 2: the shop ({items * len(SIZES):,} variants, {people:,} wishes)"):
            out_of_stock = [shirt(n, "c", lambda s: 0 if s == WISHED_SIZE else 5) for n in range(wished)]
            in_stock = [shirt(n, "c", lambda s: 5) for n in range(wished, items)]
            upsert(shop, out_of_stock + in_stock)
            shop.moments.engine.step()
            add_wishers(shop, "p", people, [f"c{n}" for n in range(wished)])
            with shop.store.engine.connect() as conn:
                after = shop.store.moments.log_end(conn)[1]
        with console.status(f"Part 2: one upsert of {items * len(SIZES):,} variants, then the engine"):
            upsert_seconds = upsert(shop, [shirt(n, "c", lambda s: 20) for n in range(items)])
            anchor_seconds, anchor_rows = sql_anchor(shop, after)
            steps = catch_up(shop)
        return RestockResult(
            variants=items * len(SIZES),
            restocked=wished,
            people=people,
            upsert_seconds=upsert_seconds,
            steps=steps,
            anchor_seconds=anchor_seconds,
            anchor_rows=anchor_rows,
            counts=outbox_counts(shop),
        )


# ---- the table -------------------------------------------------------------------------------------------


def report_latency(table: Table, latency: LatencyResult) -> None:
    loaded, idle = latency.loaded, latency.idle
    p99, idle_p99 = percentile(loaded, 0.99), percentile(idle, 0.99)
    anchor = f"p99 {idle_p99:.2f} s with nothing ingested"
    table.add_row(
        f"restock to queued message while ingesting ({len(loaded)} of {latency.restocks} restocks)",
        f"p50 {statistics.median(loaded):.2f} s, p95 {percentile(loaded, 0.95):.2f} s, p99 {p99:.2f} s",
        anchor,
        f"{p99 / idle_p99:.1f}x",
        f"p99 <= {GOAL_LATENCY_P99:.0f} s",
    )
    table.add_row(
        "events ingested meanwhile (Shop.ingest in process)",
        f"{latency.rate:,.0f} events/s",
        "",
        "",
        f"{INGEST_RATE:,} events/s offered",
    )
    record(
        "moments",
        f"restock to queued message p99, ingesting {latency.rate:,.0f} events/s (SQLite, simulated)",
        f"{p99:.2f} s",
        anchor=anchor,
        ratio=round(p99 / idle_p99, 2),
        goal=f"<= {GOAL_LATENCY_P99:.0f} s at {INGEST_RATE:,} events/s",
        met=p99 <= GOAL_LATENCY_P99 and latency.rate >= 0.95 * INGEST_RATE,
    )


def report_restock(table: Table, restock: RestockResult) -> None:
    scale = restock.people / 20000  # the goal is for 20,000 people
    goal = f"<= {GOAL_RESTOCK_SECONDS * scale:g} s" + (" (5 s pro rata)" if scale != 1 else "")
    made = sum(n for status, n in restock.counts.items() if not status.startswith("suppressed"))
    anchor = f"one SQL join + insert {restock.anchor_seconds:.2f} s"
    ratio = restock.seconds / restock.anchor_seconds
    table.add_row(
        f"{restock.variants:,}-variant upsert, {restock.restocked:,} back, wished by {restock.people:,}: "
        f"engine caught up, {made:,} moments queued",
        f"{restock.seconds:.1f} s ({restock.seconds / max(made, 1) * 1000:.2f} ms a moment)",
        f"{anchor} ({restock.anchor_rows:,} rows)",
        f"{ratio:,.0f}x",
        goal,
    )
    record(
        "moments",
        f"{restock.variants:,}-variant restock to {made:,} queued moments (SQLite, simulated)",
        f"{restock.seconds:.1f} s",
        anchor=anchor,
        ratio=round(ratio, 1),
        goal=goal,
        met=restock.seconds <= GOAL_RESTOCK_SECONDS * scale,
    )


def report_sending(table: Table, send: SendResult) -> None:
    n, anchor_rate = send.messages, send.messages / send.anchor
    anchor = f"smtplib bare loop {anchor_rate:,.0f} messages/s"
    at_send, rendered = n / send.at_send, n / send.rendered
    table.add_row(
        f"emails sent by one worker, rendered at send ({n:,})",
        f"{at_send:,.0f} messages/s",
        anchor,
        f"{anchor_rate / at_send:.1f}x",
        f">= {GOAL_SEND_RATE:.0f} messages/s",
    )
    table.add_row(
        f"emails sent by one worker, already rendered ({n:,})",
        f"{rendered:,.0f} messages/s",
        anchor,
        f"{anchor_rate / rendered:.1f}x",
        "",
    )
    record(
        "moments",
        "emails sent by one worker, rendered at send (local aiosmtpd, simulated)",
        f"{at_send:,.0f} messages/s",
        anchor=anchor,
        ratio=round(anchor_rate / at_send, 2),
        goal=f">= {GOAL_SEND_RATE:.0f} messages/s",
        met=at_send >= GOAL_SEND_RATE,
    )


def report(
    console: Console,
    latency: LatencyResult,
    restock: RestockResult,
    send: SendResult,
    load: tuple[float, ...],
) -> None:
    table = Table(title="Moments and outreach (SQLite, simulated shops)", title_justify="left")
    for column in ("measure", "figure", "anchor", "ratio", "goal"):
        table.add_column(column)
    report_latency(table, latency)
    report_restock(table, restock)
    report_sending(table, send)
    console.print(table)
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(restock.counts.items()))
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(send.outcomes.items()) if v)
    steps = ", ".join(f"{s:.1f}" for s in restock.steps)
    console.print(
        f"(1: {latency.rows:,} outbox rows seen, polled every {POLL * 1000:.0f} ms; a bare engine.step() "
        f"on an idle log {latency.idle_step * 1000:.2f} ms. 2: the upsert itself "
        f"{restock.upsert_seconds:.2f} s; steps {steps} s; outbox {counts}. 3: {outcomes}; the server "
        f"received {send.received:,}, the anchor's included. Load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="part 1: seconds of ingest load")
    parser.add_argument("--people", type=int, default=20000, help="part 2: people wishing (20 a variant)")
    parser.add_argument("--messages", type=int, default=2000, help="part 3: emails per batch")
    parser.add_argument("--quick", action="store_true", help="10 s, 2,000 people, 500 messages")
    args = parser.parse_args()
    seconds, people, messages = (
        (10.0, 2000, 500) if args.quick else (args.seconds, args.people, args.messages)
    )
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / name for name in ("latency", "restock", "send")]
        for folder in folders:
            folder.mkdir()
        latency = under_load(folders[0], seconds, console)
        restock = large_restock(folders[1], people, console)
        send = sending(folders[2], messages, console)
    report(console, latency, restock, send, load)


if __name__ == "__main__":
    main()
