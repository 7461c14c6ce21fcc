"""Audience size over 1M events, on SQLite and PostgreSQL, against one hand-written SQL statement.

The shop is SIMULATED and written straight into the tables with bulk inserts: 50,000 people (1% of them
merged into another, their rows re-pointed as a merge leaves them), 1,000,000 events over 180 days,
appended in time order as a live log is (60% "Product Viewed", 25% page views, 8% "Product Added", 2%
"Order Completed", the rest other track events; a person's share drawn from a heavy-tailed distribution),
a view interaction per "Product Viewed" and 1-3 purchase interactions per order, 400 items in 8 top
categories (2 sub-categories each), and an `email_marketing` consent entry for a third of the people (a
fifth of those then withdraw it). The tables are ANALYZEd once loaded, as a live shop's would be.

The audience: viewed a product at least 3 times in the last 14 days, and bought from "Party" in the last
90 days, and has granted email_marketing (the shop's default, opt_out, for the people with no entry).
Timed: `AudienceMembers.count` against a hand-written `SELECT COUNT(DISTINCT person_id)` with the same
conditions, best of 3 warm runs each (best of 2 with `--quick`), in the same process; the two counts must
agree. Goal: our count in at most 1 s over 1M events, per backend. PostgreSQL
(`SHOPKEEPER_BENCH_POSTGRES_URL`, default postgresql+psycopg://postgres@127.0.0.1:5432/test) runs in a
fresh schema that is dropped afterwards; a table row says "not run" when it does not answer.

    .venv/bin/python benchmarks/audiences.py [--events 1000000] [--people 50000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from bulk_tables import load
from goals import record
from rich.console import Console
from rich.table import Table
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper.personas.conditions import describe, parse_condition
from shopkeeper.personas.members import AudienceMembers
from shopkeeper.store import Store
from shopkeeper.store.schema import UtcDateTime

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
POSTGRES_URL = os.environ.get(
    "SHOPKEEPER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
GOAL_SECONDS = 1.0
TOPS = ("Party", "Kitchen", "Garden", "Toys", "Books", "Bags", "Lighting", "Gifts")
AUDIENCE = {
    "all": [
        {"event": "Product Viewed", "at_least": 3, "within_days": 14},
        {"purchased": "Party", "within_days": 90},
        {"consent": "email_marketing"},
    ]
}
HAND_SQL = """
SELECT COUNT(DISTINCT v.person_id) FROM (
    SELECT person_id FROM events
    WHERE event = 'Product Viewed' AND timestamp >= :since_14
    GROUP BY person_id HAVING COUNT(*) >= 3
) AS v
WHERE v.person_id IN (
    SELECT i.person_id FROM interactions AS i JOIN items AS it ON it.item_id = i.item_id
    WHERE i.kind = 0 AND i.at >= :since_90
      AND (it.category = 'Party' OR ' > ' || it.category || ' > ' LIKE '% > Party > %')
)
AND v.person_id NOT IN (
    SELECT n.owner FROM (
        SELECT COALESCE(p.merged_into, p.person_id) AS owner, MAX(c.id) AS id
        FROM consents AS c JOIN people AS p ON p.person_id = c.person_id
        WHERE c.purpose = 'email_marketing'
        GROUP BY COALESCE(p.merged_into, p.person_id)
    ) AS n JOIN consents AS c2 ON c2.id = n.id
    WHERE c2.granted = 0
)
"""


def simulate(people: int, n_events: int, rng: np.random.Generator) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows as tuples in the column order of `COLUMNS` (timestamps as datetimes)."""
    ids = np.arange(1, people + 1)
    merged = rng.random(people) < 0.01
    live = ids[~merged]
    people_rows = [
        (int(p), NOW - timedelta(days=400), int(rng.choice(live)) if m else None, 0)
        for p, m in zip(ids, merged, strict=True)
    ]
    people_rows.sort(key=lambda row: row[2] is not None)  # whom a person was merged into comes first
    weight = rng.pareto(1.5, size=len(live)) + 1
    who = rng.choice(live, size=n_events, p=weight / weight.sum())
    seconds = np.sort(rng.uniform(0, 180 * 86400, size=n_events))[::-1]  # appended oldest first, as a log is
    kind = rng.choice(5, size=n_events, p=[0.60, 0.25, 0.08, 0.02, 0.05])
    names = np.array(["Product Viewed", "Home", "Product Added", "Order Completed", "Newsletter Opened"])
    types = np.array(["track", "page", "track", "track", "track"])
    items_list = [(f"{top.lower()}-{n}", f"{top} > {top} {n % 2}") for top in TOPS for n in range(50)]
    item_ids = np.array([i for i, _ in items_list])
    event_rows, interaction_rows = [], []
    for n in range(n_events):
        at = NOW - timedelta(seconds=float(seconds[n]))
        person, k, message = int(who[n]), int(kind[n]), f"m{n}"
        event_rows.append((message, str(types[k]), str(names[k]), person, at, at, "{}"))
        if k == 0:
            interaction_rows.append((person, str(item_ids[n % len(item_ids)]), 2, at, 1.0, message))
        elif k == 3:
            for item in rng.choice(item_ids, size=int(rng.integers(1, 4))):
                interaction_rows.append((person, str(item), 0, at, float(rng.integers(1, 3)), message))
    consent_rows = []
    for person in rng.choice(ids, size=people // 3, replace=False):
        consent_rows.append((int(person), "email_marketing", 1, NOW - timedelta(days=60), "api", "bench"))
        if rng.random() < 0.2:
            consent_rows.append((int(person), "email_marketing", 0, NOW - timedelta(days=9), "api", "bench"))
    item_rows = [
        (item, item, category, float(rng.integers(2, 60)), "GBP", "{}", NOW, NOW)
        for item, category in items_list
    ]
    return {
        "people": people_rows,
        "events": event_rows,
        "interactions": interaction_rows,
        "items": item_rows,
        "consents": consent_rows,
    }


COLUMNS = {
    "people": ("person_id", "created_at", "merged_into", "generation"),
    "events": ("message_id", "type", "event", "person_id", "timestamp", "received_at", "payload"),
    "interactions": ("person_id", "item_id", "kind", "at", "quantity", "message_id"),
    "items": ("item_id", "title", "category", "price", "currency", "attributes", "created_at", "updated_at"),
    "consents": ("person_id", "purpose", "granted", "at", "channel", "actor"),
}


def best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    function()  # warm
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(store: Store, repeats: int) -> tuple[float, float, int, int]:
    """Ours and the hand SQL: best seconds each, and each one's count."""
    condition = parse_condition(AUDIENCE)
    audience = AudienceMembers(store, now=lambda: NOW)
    ours, counted = best(lambda: audience.count(condition), repeats)
    statement = text(HAND_SQL).bindparams(
        bindparam("since_14", NOW - timedelta(days=14), type_=UtcDateTime),
        bindparam("since_90", NOW - timedelta(days=90), type_=UtcDateTime),
    )

    def hand() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    anchor, expected = best(hand, repeats)
    return ours, anchor, counted, expected


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL in a fresh schema of its own, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_answers() -> str:
    """Empty when the server answers, else why not."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return ""
    except Exception as exc:  # any failure to connect means: not run
        return f"not run: PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__})"
    finally:
        engine.dispose()


def run(
    url: str, rows: dict[str, list[tuple[Any, ...]]], repeats: int
) -> tuple[float, float, int, int, float]:
    store = Store.open(url)
    try:
        started = time.perf_counter()
        load(store, rows, COLUMNS)
        loaded = time.perf_counter() - started
        return (*measure(store, repeats), loaded)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="the same 1M events, best of 2 instead of 3")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    console = Console(highlight=False)
    started = time.perf_counter()
    rows = simulate(args.people, args.events, np.random.default_rng(7))
    console.print(
        f"simulated {args.people:,} people, {len(rows['events']):,} events, "
        f"{len(rows['interactions']):,} interactions in {time.perf_counter() - started:.1f} s"
    )
    table = Table(title=f"Audience size over {args.events:,} SIMULATED events (best of {repeats} warm)")
    for column in ("backend", "ours s", "hand SQL s", "ratio", "count", "load s"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    backends = [("sqlite", ""), ("postgresql", postgres_answers())]
    for backend, why_not in backends:
        measure_name = f"audience size over 1M events ({backend})"
        if why_not:
            table.add_row(backend, why_not, "", "", "", "")
            record("audiences", measure_name, why_not, goal=f"<= {GOAL_SECONDS:g} s", met=None)
            continue
        with tempfile.TemporaryDirectory(prefix="shopkeeper-audiences-") as tmp:
            place = _sqlite(Path(tmp)) if backend == "sqlite" else postgres_schema()
            with place as url:
                ours, anchor, counted, expected, loaded = run(url, rows, repeats)
        assert counted == expected, f"{backend}: ours counted {counted:,}, the hand SQL {expected:,}"
        table.add_row(
            backend, f"{ours:.3f}", f"{anchor:.3f}", f"{ours / anchor:.2f}x", f"{counted:,}", f"{loaded:.0f}"
        )
        record(
            "audiences",
            measure_name,
            f"{ours:.2f} s",
            anchor=f"hand SQL COUNT(DISTINCT) {anchor:.2f} s",
            ratio=ours / anchor,
            goal=f"<= {GOAL_SECONDS:g} s",
            met=ours <= GOAL_SECONDS,
        )
    console.print(table)
    console.print(f"audience: people who {describe(parse_condition(AUDIENCE))}")


@contextmanager
def _sqlite(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / 'shop.db'}"


if __name__ == "__main__":
    main()
