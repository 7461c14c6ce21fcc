"""decide's speed: in process, over HTTP at a fixed offered load, and `shopkeeper train` on the whole file.

Each measure runs against an anchor measured in the same run, so that a busy machine shows up in both:

- In process: `Shop.decide` for real customers of the bundled sample (random order, a few thousand calls,
  plus some unknown visitors), on a fresh SQLite shop, once the process has prepared its people (as a
  serving process does when a model is published; the time that takes is reported). Anchor: the bare
  numeric core for the same calls, the model's `score` and `top_n` (popularity's `top_n` for visitors),
  timed call by call, interleaved with the decisions; and a bare numpy `top_n` over a random score per
  catalog item, the least any ranking over the same item count costs. Target: decide p99 <= 2 ms.
  Reported apart: the first decision right after the person's own new event (a product view), which
  reads them afresh and scores them again (their profile is rebuilt first, as any read would).
- HTTP: `POST /v1/decide` on `shopkeeper serve` at an offered load of 200 requests/s, open loop (each
  request is sent at its scheduled time, and its latency counts from then, so a slow server cannot slow
  the load down), from a load generator in a separate process. Anchor: a bare FastAPI endpoint that
  returns a small fixed JSON, served by uvicorn with the same settings, at the same load. Target: p99 <=
  20 ms.
- Train: the whole Online Retail file imported into a fresh SQLite database, then `shopkeeper train`
  as a command, timed from start to exit. Target: <= 30 s.

    .venv/bin/python benchmarks/decide.py [--calls 4000] [--rate 200] [--seconds 25] [--rounds 1]
        [--file PATH] [--skip-http] [--skip-train] [--db URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from decide_support.http_load import (
    VISITOR_SHARE,
    WARMUP_SECONDS,
    decide_requests,
    free_port,
    measure,
    served,
)
from goals import record
from rich.console import Console
from rich.table import Table
from shared_data import ONLINE_RETAIL
from sqlalchemy import select

from shopkeeper import Shop
from shopkeeper.decide.pipeline import CANDIDATES_PER_SLOT
from shopkeeper.events.importers import import_orders, open_file, open_sample
from shopkeeper.recommend import load_model
from shopkeeper.recommend.base import History, top_n
from shopkeeper.recommend.bundle import ModelBundle
from shopkeeper.store import Store
from shopkeeper.store.interactions import PURCHASE, RETURN, VIEW
from shopkeeper.store.models import SqlModelRegistry
from shopkeeper.store.schema import identities, interactions

RETAIL_CSV = ONLINE_RETAIL
TARGET_DECIDE_P99_MS = 2.0
TARGET_HTTP_P99_MS = 20.0
TARGET_TRAIN_SECONDS = 30.0
WARMUP_CALLS = 300


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 3),
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 0.99), 3),
        "max": round(max(values), 3),
    }


# ---- in process ----------------------------------------------------------------------------------


def latest_bundle(store: Store) -> ModelBundle:
    registry = SqlModelRegistry(store.engine)
    version = registry.latest_version()
    assert version is not None, "train first"
    with tempfile.TemporaryDirectory() as tmp:
        record = registry.unpack(version, Path(tmp))
        return ModelBundle.load(Path(tmp), version, record.summary, load_model)


def histories(store: Store, bundle: ModelBundle, person_id: int | None = None) -> dict[int, History]:
    """Everyone's history in the model's item space, as decide builds it (one weight per event and item,
    returns left out), read once, up front: the anchor must not pay for reading it."""
    query = select(
        interactions.c.person_id,
        interactions.c.item_id,
        interactions.c.kind,
        interactions.c.at,
        interactions.c.message_id,
    ).order_by(interactions.c.person_id, interactions.c.at, interactions.c.id)
    if person_id is not None:
        query = query.where(interactions.c.person_id == person_id)
    rows: dict[int, list[tuple[int, float, int]]] = {}
    seen: set[tuple[int, int, str]] = set()
    with store.engine.connect() as conn:
        for person_id, item_id, kind, at, message_id in conn.execute(query):
            index = bundle.index.get(item_id)
            if index is None or kind == RETURN or (person_id, index, message_id) in seen:
                continue
            seen.add((person_id, index, message_id))
            rows.setdefault(person_id, []).append((index, at.timestamp(), kind))
    return {
        person_id: History(
            np.asarray([r[0] for r in events], np.int64),
            np.asarray([r[1] for r in events], np.float64),
            np.ones(len(events)),
            np.asarray([r[2] for r in events], np.int64),
        )
        for person_id, events in rows.items()
    }


def anchor_call(bundle: ModelBundle, history: History | None, n: int) -> None:
    """The numeric core alone: what any implementation of decide must at least compute."""
    if history is not None and ((history.kinds == PURCHASE).any() or (history.kinds == VIEW).any()):
        now = max(bundle.trained_until.timestamp(), float(history.times.max()))
        top_n(bundle.model.score(history, now), n * CANDIDATES_PER_SLOT)
    else:
        top_n(bundle.popularity.astype(np.float64, copy=True), n * CANDIDATES_PER_SLOT)


def bench_in_process(url: str, calls: int, seed: int) -> dict[str, Any]:
    shop = Shop.open(url)
    try:
        report = import_orders(shop.store, open_sample(), replay_until=datetime.now(UTC))  # as the demo
        shop.train()
        started = time.perf_counter()
        deciding = shop._deciding()
        deciding.bundle()  # loading the model starts the preparing, as in a serving process
        while deciding.warmed is None and time.perf_counter() - started < 600:
            time.sleep(0.05)
        prepare_seconds = time.perf_counter() - started
        bundle = latest_bundle(shop.store)
        everyone = histories(shop.store, bundle)
        with shop.store.engine.connect() as conn:
            customers = list(
                conn.execute(
                    select(identities.c.value, identities.c.person_id).where(identities.c.kind == "user_id")
                )
            )
        rng = random.Random(seed)
        plan: list[tuple[str | None, str | None, int | None]] = []  # (user_id, anonymous_id, person_id)
        for k in range(calls + WARMUP_CALLS):
            if rng.random() < VISITOR_SHARE:
                plan.append((None, f"visitor-{k}", None))
            else:
                user_id, person_id = rng.choice(customers)
                plan.append((user_id, None, person_id))
        n = 10
        decide_ms: list[float] = []
        anchor_ms: list[float] = []
        bare_ms: list[float] = []
        catalog_scores = np.random.default_rng(seed).random(len(bundle.item_ids))
        visitor_ms: list[float] = []
        clock = time.perf_counter
        for k, (user_id, anonymous_id, person_id) in enumerate(plan):
            history = everyone.get(person_id) if person_id is not None else None
            started = clock()
            shop.decide(user_id=user_id, anonymous_id=anonymous_id, placement="web", n=n)
            middle = clock()
            anchor_call(bundle, history, n)
            ended = clock()
            top_n(catalog_scores, n * CANDIDATES_PER_SLOT)
            bare = clock()
            if k < WARMUP_CALLS:
                continue
            decide_ms.append((middle - started) * 1000)
            anchor_ms.append((ended - middle) * 1000)
            bare_ms.append((bare - ended) * 1000)
            if person_id is None:
                visitor_ms.append(decide_ms[-1])
        fresh_ms, fresh_anchor_ms = after_own_event(shop, bundle, customers, rng, calls // 10)
        shop.close_decisions()
    finally:
        shop.close()
    overhead = [d - a for d, a in zip(decide_ms, anchor_ms, strict=True)]
    decide, anchor, bare = summary(decide_ms), summary(anchor_ms), summary(bare_ms)
    return {
        "sample": {"rows": report.rows_read, "customers": len(customers), "model": bundle.model.name},
        "calls": len(decide_ms),
        "visitor_calls": len(visitor_ms),
        "decide_ms": decide,
        "visitor_decide_ms": summary(visitor_ms) if visitor_ms else None,
        "anchor_ms": anchor,
        "bare_top_n_ms": bare,
        "items": len(bundle.item_ids),
        "ratio_p99_vs_bare_top_n": round(decide["p99"] / bare["p99"], 2),
        "overhead_ms": summary(overhead),
        "ratio_p50": round(decide["p50"] / anchor["p50"], 2),
        "ratio_p99": round(decide["p99"] / anchor["p99"], 2),
        "target_p99_ms": TARGET_DECIDE_P99_MS,
        "prepare_seconds": round(prepare_seconds, 2),
        "prepared_people": len(deciding._states),
        "after_own_event_ms": summary(fresh_ms),
        "after_own_event_anchor_ms": summary(fresh_anchor_ms),
    }


def after_own_event(
    shop: Shop, bundle: ModelBundle, customers: list[Any], rng: random.Random, calls: int
) -> tuple[list[float], list[float]]:
    """The decision right after the person viewed a product: nothing kept about them is current, so
    it reads them again and scores them again. Anchor: the numeric core on their new history."""
    decide_ms: list[float] = []
    anchor_ms: list[float] = []
    clock = time.perf_counter
    for k in range(calls):
        user_id, person_id = rng.choice(customers)
        item_id = rng.choice(bundle.item_ids)
        shop.track(user_id=user_id, event="Product Viewed", properties={"product_id": item_id})
        started = clock()
        shop.decide(user_id=user_id, placement="web", n=10)
        middle = clock()
        history = histories_of(shop.store, bundle, person_id)
        before_anchor = clock()
        anchor_call(bundle, history, 10)
        ended = clock()
        if k >= 10:
            decide_ms.append((middle - started) * 1000)
            anchor_ms.append((ended - before_anchor) * 1000)
    return decide_ms, anchor_ms


def histories_of(store: Store, bundle: ModelBundle, person_id: int) -> History:
    return histories(store, bundle, person_id).get(person_id, History.empty())


# ---- HTTP ------------------------------------------------------------------------------------------


def bench_http(url: str, rate: float, seconds: float, rounds: int, seed: int) -> dict[str, Any]:
    store = Store.open(url)
    try:
        key, _ = store.keys.create("admin", name="benchmark")
        with store.engine.connect() as conn:
            customers = list(conn.scalars(select(identities.c.value).where(identities.c.kind == "user_id")))
    finally:
        store.close()
    count = int((WARMUP_SECONDS + seconds) * rate)
    shop_ms: list[float] = []
    bare_ms: list[float] = []
    problems = {"shopkeeper": [0, 0], "bare": [0, 0]}  # errors, dropped
    for round_ in range(rounds):
        # The anchor first, then shopkeeper, each on a fresh port, in every round.
        for name, latencies in (("bare", bare_ms), ("shopkeeper", shop_ms)):
            port = free_port()
            with served(name, url, port):
                requests = decide_requests(key, customers, port, count, seed + round_)
                result = measure(port, requests, rate, seconds)
            latencies += result.latencies_ms
            problems[name][0] += result.errors
            problems[name][1] += result.dropped
    shop, bare_summary = summary(shop_ms), summary(bare_ms)
    return {
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "decide_ms": shop,
        "decide_requests": len(shop_ms),
        "decide_errors": problems["shopkeeper"][0],
        "decide_dropped": problems["shopkeeper"][1],
        "bare_ms": bare_summary,
        "bare_requests": len(bare_ms),
        "bare_errors": problems["bare"][0],
        "bare_dropped": problems["bare"][1],
        "ratio_p99": round(shop["p99"] / bare_summary["p99"], 2),
        "target_p99_ms": TARGET_HTTP_P99_MS,
    }


# ---- train -----------------------------------------------------------------------------------------


def bench_train(file: Path, directory: Path) -> dict[str, Any]:
    url = f"sqlite:///{directory}/train.db"
    store = Store.open(url)
    try:
        report = import_orders(store, open_file(file))
    finally:
        store.close()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "train", "--db", url, "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    printed = json.loads(done.stdout)
    return {
        "rows": report.rows_read,
        "import_seconds": round(report.seconds, 2),
        "train_seconds": round(seconds, 2),
        "summary": printed,
        "target_seconds": TARGET_TRAIN_SECONDS,
    }


# ---- report ----------------------------------------------------------------------------------------


def print_tables(result: dict[str, Any]) -> None:
    console = Console(highlight=False, width=150)
    table = Table(title=f"decide ({result['backend']})", title_justify="left")
    for column in ("measure", "mean", "p50", "p99", "anchor / target", "ratio p50 / p99"):
        table.add_column(column)
    local = result.get("in_process")
    if local:
        d, a, o = local["decide_ms"], local["anchor_ms"], local["overhead_ms"]
        table.add_row(
            f"Shop.decide, {local['calls']:,} calls ({local['visitor_calls']} visitors)",
            f"{d['mean']:.3f} ms",
            f"{d['p50']:.3f} ms",
            f"{d['p99']:.3f} ms",
            f"target p99 <= {local['target_p99_ms']} ms",
            f"{local['ratio_p50']:.2f}x / {local['ratio_p99']:.2f}x",
        )
        table.add_row(
            f"  anchor: {local['sample']['model']} score + top_n, same calls",
            f"{a['mean']:.3f} ms",
            f"{a['p50']:.3f} ms",
            f"{a['p99']:.3f} ms",
            "the numeric core alone",
            "",
        )
        b = local["bare_top_n_ms"]
        table.add_row(
            f"  anchor: bare numpy top_n over the {local['items']:,} items, same calls",
            f"{b['mean']:.3f} ms",
            f"{b['p50']:.3f} ms",
            f"{b['p99']:.3f} ms",
            "",
            f"decide {d['p50'] / b['p50']:.1f}x / {local['ratio_p99_vs_bare_top_n']:.1f}x",
        )
        table.add_row(
            "  pipeline overhead (decide - anchor, per call)",
            f"{o['mean']:.3f} ms",
            f"{o['p50']:.3f} ms",
            f"{o['p99']:.3f} ms",
            "",
            "",
        )
        f, fa = local["after_own_event_ms"], local["after_own_event_anchor_ms"]
        table.add_row(
            "  right after the person's own new event (read afresh, scored again)",
            f"{f['mean']:.3f} ms",
            f"{f['p50']:.3f} ms",
            f"{f['p99']:.3f} ms",
            f"anchor (score + top_n) p50 {fa['p50']:.3f} / p99 {fa['p99']:.3f} ms",
            f"{f['p50'] / fa['p50']:.2f}x / {f['p99'] / fa['p99']:.2f}x",
        )
        table.add_row(
            f"  preparing {local['prepared_people']:,} people after the model loaded (background)",
            f"{local['prepare_seconds']:.1f} s",
            "",
            "",
            "",
            "",
        )
        if local["visitor_decide_ms"]:
            v = local["visitor_decide_ms"]
            table.add_row(
                "  unknown visitors only",
                f"{v['mean']:.3f} ms",
                f"{v['p50']:.3f} ms",
                f"{v['p99']:.3f} ms",
                "",
                "",
            )
    http = result.get("http")
    if http:
        d, b = http["decide_ms"], http["bare_ms"]
        table.add_row(
            f"POST /v1/decide at {http['rate']:.0f}/s, {http['decide_requests']:,} requests"
            f" ({http['decide_errors']} errors, {http['decide_dropped']} dropped)",
            f"{d['mean']:.2f} ms",
            f"{d['p50']:.2f} ms",
            f"{d['p99']:.2f} ms",
            f"target p99 <= {http['target_p99_ms']} ms",
            f"{d['p50'] / b['p50']:.2f}x / {http['ratio_p99']:.2f}x",
        )
        table.add_row(
            f"  anchor: bare FastAPI, same load ({http['bare_errors']} errors)",
            f"{b['mean']:.2f} ms",
            f"{b['p50']:.2f} ms",
            f"{b['p99']:.2f} ms",
            "",
            "",
        )
    train = result.get("train")
    if train:
        table.add_row(
            f"shopkeeper train, whole file ({train['rows']:,} rows), start to exit",
            f"{train['train_seconds']:.1f} s",
            "",
            "",
            f"target <= {train['target_seconds']:.0f} s",
            "",
        )
    console.print(table)
    verdicts = []
    if local:
        verdicts.append(("in-process p99", local["decide_ms"]["p99"] <= local["target_p99_ms"]))
    if http:
        verdicts.append(("HTTP p99", http["decide_ms"]["p99"] <= http["target_p99_ms"]))
    if train:
        verdicts.append(("train", train["train_seconds"] <= train["target_seconds"]))
    console.print("; ".join(f"{name} {'meets' if ok else 'MISSES'} its target" for name, ok in verdicts))


def record_goals(result: dict[str, Any], rate: float) -> None:
    """decide's three goals, each against its anchor of the same run (train has none)."""
    backend = result["backend"]
    local = result["in_process"]
    record(
        "decide",
        f"Shop.decide p99, in process ({local['calls']:,} calls, {backend})",
        f"{local['decide_ms']['p99']:.2f} ms",
        anchor=f"score + top_n p99 {local['anchor_ms']['p99']:.2f} ms",
        ratio=local["ratio_p99"],
        goal=f"<= {TARGET_DECIDE_P99_MS:g} ms",
        met=local["decide_ms"]["p99"] <= TARGET_DECIDE_P99_MS,
    )
    measure = f"POST /v1/decide p99 at {rate:.0f} requests/s ({backend})"
    http = result.get("http")
    if http is None:
        record("decide", measure, "not run (--skip-http)", goal=f"<= {TARGET_HTTP_P99_MS:g} ms")
    else:
        record(
            "decide",
            measure,
            f"{http['decide_ms']['p99']:.2f} ms ({http['decide_errors']} errors)",
            anchor=f"bare FastAPI p99 {http['bare_ms']['p99']:.2f} ms",
            ratio=http["ratio_p99"],
            goal=f"<= {TARGET_HTTP_P99_MS:g} ms",
            met=http["decide_ms"]["p99"] <= TARGET_HTTP_P99_MS,
        )
    measure = "shopkeeper train, whole file, start to exit"
    train = result.get("train")
    if train is None:
        record("decide", measure, "not run (--skip-train)", goal=f"<= {TARGET_TRAIN_SECONDS:g} s")
    else:
        record(
            "decide",
            measure,
            f"{train['train_seconds']:.1f} s",
            goal=f"<= {TARGET_TRAIN_SECONDS:g} s",
            met=train["train_seconds"] <= TARGET_TRAIN_SECONDS,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4000, help="in-process decide calls")
    parser.add_argument("--rate", type=float, default=200.0, help="HTTP requests per second")
    parser.add_argument("--seconds", type=float, default=25.0, help="HTTP measuring time per server")
    parser.add_argument("--rounds", type=int, default=1, help="HTTP rounds (anchor, then shopkeeper)")
    parser.add_argument("--file", type=Path, default=RETAIL_CSV, help="the file to train on")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument(
        "--db",
        default=None,
        help="an empty database for the in-process and HTTP parts (default: a fresh SQLite file), e.g. "
        "a PostgreSQL schema: postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%%3Dbench",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/decide.db"
        result["backend"] = url.split(":", 1)[0].split("+", 1)[0]
        result["in_process"] = bench_in_process(url, args.calls, args.seed)
        if not args.skip_http:
            result["http"] = bench_http(url, args.rate, args.seconds, args.rounds, args.seed)
        if not args.skip_train:
            result["train"] = bench_train(args.file, Path(tmp))
    record_goals(result, args.rate)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
