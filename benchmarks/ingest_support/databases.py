"""Fresh databases for each phase, what they hold afterwards, and the raw `executemany` anchor."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from ingest_support.load import PhaseResult
from shopkeeper.store import Store
from shopkeeper.store.schema import events, identities, merges, people

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def executemany_anchor(url: str, rows: list[list[dict[str, Any]]]) -> PhaseResult:
    """The floor: the same rows straight into `events`, one committed transaction per batch."""
    store = Store.open(url)
    try:
        start = time.perf_counter()
        cpu_start = time.process_time()
        for batch in rows:
            with store.engine.begin() as conn:
                conn.execute(insert(events), batch)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        with store.engine.connect() as conn:
            stored = int(conn.scalar(select(func.count()).select_from(events)) or 0)
    finally:
        store.close()
    total = sum(len(batch) for batch in rows)
    if stored != total:
        raise RuntimeError(f"the anchor stored {stored} of {total} rows")
    return PhaseResult(
        name="executemany",
        seconds=elapsed,
        batches=len(rows),
        events=total,
        events_per_second=total / elapsed,
        generator_cores=cpu / elapsed,
        server_ms_per_batch=cpu * 1000 / max(len(rows), 1),
    )


# --- databases -----------------------------------------------------------------------------------------


class Databases:
    """Fresh, empty databases: SQLite files in a temp dir, or PostgreSQL schemas dropped at the end."""

    def __init__(self, backend: str, workdir: Path, pg_url: str) -> None:
        self.backend = backend
        self._workdir = workdir
        self._pg_url = pg_url
        self._schemas: list[str] = []

    def fresh(self, label: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self._workdir / f'{label}.db'}"
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self._pg_url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            engine.dispose()
        self._schemas.append(schema)
        return (
            make_url(self._pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        if not self._schemas:
            return
        engine = create_engine(self._pg_url)
        try:
            with engine.begin() as conn:
                for schema in self._schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            engine.dispose()
        self._schemas.clear()


def prepare(url: str, existing_people: int) -> str:
    """Migrate the database, create a write key, and add people known from before when asked to."""
    store = Store.open(url)
    try:
        raw, _ = store.keys.create("write", name="benchmark")
        _add_people(store, existing_people)
    finally:
        store.close()
    return raw


def _add_people(store: Store, n: int, chunk: int = 10_000) -> None:
    """`n` earlier visitors, each with an anonymousId, a third with a userId: an identity graph to search."""
    now = datetime.now(UTC)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        with store.engine.begin() as conn:
            first = int(conn.scalar(select(func.coalesce(func.max(people.c.person_id), 0))) or 0) + 1
            conn.execute(insert(people), [{"created_at": now}] * size)
            links = [
                {
                    "kind": kind,
                    "value": f"earlier-{kind}-{start + i}",
                    "person_id": first + i,
                    "created_at": now,
                }
                for i in range(size)
                for kind in ("anonymous_id", "user_id")[: 2 if (start + i) % 3 == 0 else 1]
            ]
            conn.execute(insert(identities), links)


def count_events(url: str) -> int:
    store = Store.open(url, upgrade=False)
    try:
        return store.events.count()
    finally:
        store.close()


def stitching(url: str) -> dict[str, int]:
    """What identity resolution did: people created, ids linked, merges made and refused."""
    store = Store.open(url, upgrade=False)
    try:
        with store.engine.connect() as conn:
            counted = conn.execute(select(merges.c.outcome, func.count()).group_by(merges.c.outcome))
            outcomes: dict[str, int] = {str(outcome): int(n) for outcome, n in counted}
            return {
                "people": int(conn.scalar(select(func.count()).select_from(people)) or 0),
                "ids": int(conn.scalar(select(func.count()).select_from(identities)) or 0),
                "merged": int(outcomes.get("merged", 0)),
                "refused": int(outcomes.get("refused", 0)),
            }
    finally:
        store.close()
