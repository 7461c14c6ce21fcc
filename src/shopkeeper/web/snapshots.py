"""Shop-wide figures that take seconds on a big shop (the holdout report, every audience's size and reach),
kept for a while and refreshed in the background, as GrowthBook keeps experiment results: a page shows
the figures and when they were computed, with a link to compute them again now.

A figure is computed while the page waits only the first time it is asked for, when `fresh` is asked
(the page's "refresh" link), or when it is older than `STALE_LIMIT` times its age limit (it is forgotten
then). Past its age limit (`SHOPKEEPER_DASHBOARD_SNAPSHOT_SECONDS`; 0 keeps nothing), it is still shown
once more while one background thread computes it again. The pages key each figure by what it is
computed from (`web.figures`), so that a change to that shows at once; `drop` forgets them all (an
erasure). New events show within the age limit. They are counts and rates, never a person's data, and
the process holds them in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
STALE_LIMIT = 10  # older than this many age limits: computed again while the page waits


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A figure and when it was computed."""

    value: Any
    at: datetime  # wall clock, shown on the page
    taken: float  # monotonic
    seconds: float  # how long computing it took
    kept_for: float  # the age limit it was computed under (the setting)

    def age(self) -> float:
        return time.monotonic() - self.taken


class Snapshots:
    """Figures by key, each computed by the function a page hands in (see the module docstring)."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._kept: dict[Hashable, Snapshot] = {}
        self._refreshing: set[Hashable] = set()
        self._generation = 0  # bumped by `drop`, so that a refresh begun before it is not kept
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any], *, fresh: bool = False) -> Snapshot:
        if self._max_age <= 0:
            return _taken(compute, 0)
        with self._lock:
            self._forget_old()
            kept = None if fresh else self._kept.get(key)
            generation = self._generation
            stale = kept is not None and kept.age() > self._max_age and key not in self._refreshing
            if stale:
                self._refreshing.add(key)
        if kept is None:
            made = _taken(compute, self._max_age)
            self._keep(key, made, generation)
            return made
        if stale:
            threading.Thread(
                target=self._refresh, args=(key, compute, generation), name="snapshot", daemon=True
            ).start()
        return kept

    def keep(self, key: Hashable, value: Any, seconds: float) -> None:
        """Keep a figure computed elsewhere (as a change was saved), as if `get` had computed it."""
        if self._max_age > 0:
            made = Snapshot(value, datetime.now(UTC), time.monotonic(), seconds, self._max_age)
            self._keep(key, made, self._generation)

    def _forget_old(self) -> None:
        """Drop what is too old to show (and figures kept under definitions changed since)."""
        limit = self._max_age * STALE_LIMIT
        for key in [k for k, kept in self._kept.items() if kept.age() > limit]:
            del self._kept[key]

    def drop(self) -> None:
        """Forget every figure: something changed."""
        with self._lock:
            self._kept.clear()
            self._generation += 1

    def _refresh(self, key: Hashable, compute: Callable[[], Any], generation: int) -> None:
        try:
            self._keep(key, _taken(compute, self._max_age), generation)
        except Exception as error:
            log.warning("a dashboard figure could not be refreshed: %s", type(error).__name__)
            with self._lock:
                self._kept.pop(key, None)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _keep(self, key: Hashable, made: Snapshot, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._kept[key] = made


def _taken(compute: Callable[[], Any], kept_for: float) -> Snapshot:
    started = time.monotonic()
    value = compute()
    done = time.monotonic()
    return Snapshot(value, datetime.now(UTC), done, done - started, kept_for)
