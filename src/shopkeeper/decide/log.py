"""Decisions: what `decide` returns, and the log that stores each one as an exposure (`store.decisions`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from shopkeeper.decide.reasons import Reason
from shopkeeper.store import Store


@dataclass(frozen=True, slots=True)
class DecidedItem:
    item_id: str
    score: float
    reasons: list[Reason]
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "score": round(self.score, 6),
            "title": self.title,
            "reasons": [r.to_json() for r in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    placement: str
    person_id: int | None
    items: list[DecidedItem]
    reasons: list[Reason]
    model_version: int | None
    personalized: bool
    # Where the decision fell (logged with it; see shopkeeper.experiments.service): the universal cohort
    # (holdout | personalized | no_consent), and the experiment and arm when one applied.
    cohort: str | None = None
    experiment: str | None = None
    arm: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "placement": self.placement,
            "items": [i.to_json() for i in self.items],
            "reasons": [r.to_json() for r in self.reasons],
            "model_version": self.model_version,
            "personalized": self.personalized,
        }


class DecisionLog:
    """Writes decisions in the background, in small batches, so that deciding never waits on a disk
    sync. `flush()` waits until everything logged so far is stored.

    An erasure must not be outrun by a decision still waiting here, in this process or in another
    worker's: erase flushes this process's log first (`PrivacyService.settle`), and a batch is written
    through the store's writer path (`store.decisions.store`, in the `write_transaction` that an erasure
    holds too), keeping only the rows whose person still exists and was made no later than the decision.
    A decision for someone erased meanwhile, or for a new person who took over their person id, is
    dropped, never stored.

    Logging a row only appends it to a list: the writer thread is woken once per batch (by its first
    row), not once per row, since waking a thread for every decision costs the deciding thread more
    than the decision's own queries.
    """

    def __init__(self, store: Store, *, every: float = 0.2) -> None:
        self._store = store
        self._every = every
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._waiters: list[threading.Event] = []
        self._wake = threading.Event()  # a batch has begun
        self._hurry = threading.Event()  # someone is waiting in `flush`: write now
        self._thread = threading.Thread(target=self._run, name="shopkeeper-decision-log", daemon=True)
        self._thread.start()

    def log(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            first = len(self._rows) == 1
        if first:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> None:
        done = threading.Event()
        with self._lock:
            self._waiters.append(done)
        self._hurry.set()
        self._wake.set()
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._hurry.wait(self._every)
            with self._lock:
                self._wake.clear()
                self._hurry.clear()
                batch, self._rows = self._rows, []
                waiters, self._waiters = self._waiters, []
            if batch:
                self._store_batch(batch)
            for waiter in waiters:
                waiter.set()

    def _store_batch(self, batch: list[dict[str, Any]], *, tries: int = 4) -> None:
        """A busy or briefly unreachable store is tried again, a little later each time, rather than the
        batch being dropped; a store that is closing or gone gives up after the last try (the thread
        itself never dies)."""
        for attempt in range(tries):
            try:
                self._store.decisions.store(batch)
                return
            except Exception:  # any failure of the store (its message may carry ids: never logged)
                if attempt + 1 < tries:
                    time.sleep(0.05 * 2**attempt)
