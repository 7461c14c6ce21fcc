"""The write path alone, in this process: CPU and SQL statements per batch through `Ingestor.ingest`.

Unlike the HTTP phases this barely depends on what else runs on the machine: CPU time is the process's
own, and the statement count is exact. It tells whether a change made the write path leaner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event

from ingest_support.workload import Workload
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store


@dataclass
class InProcessResult:
    batches: int
    cpu_ms_per_batch: float
    wall_ms_per_batch: float
    statements_per_batch: float


def ingest_in_process(url: str, work: Workload, n_batches: int, warmup: int = 20) -> InProcessResult:
    """Ingest `warmup` then `n_batches` of the workload's bodies, one call each, on one thread."""
    bodies = [orjson.loads(body) for body in work.bodies[: warmup + n_batches]]
    store = Store.open(url)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    try:
        ingestor = Ingestor(store, record_consent=consent_recorder())
        for body in bodies[:warmup]:
            ingestor.ingest(body["batch"], where="batch")
        event.listen(store.engine, "before_cursor_execute", count)
        wall, cpu = time.perf_counter(), time.process_time()
        for body in bodies[warmup:]:
            ingestor.ingest(body["batch"], where="batch")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        event.remove(store.engine, "before_cursor_execute", count)
    finally:
        store.close()
    measured = max(len(bodies) - warmup, 1)
    return InProcessResult(
        batches=measured,
        cpu_ms_per_batch=cpu * 1000 / measured,
        wall_ms_per_batch=wall * 1000 / measured,
        statements_per_batch=statements / measured,
    )
