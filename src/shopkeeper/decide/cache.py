"""What decide keeps between calls, and the one query per call that says whether it is still current.

A decision needs, about the person: who they are, their consent, the traits the rules read, their
history, their experiment unit, and the model's ranking of the catalog for them. Reading all that costs
seven statements and scoring costs a millisecond or more; none of it changes between two visits unless
the person does something. So decide keeps a `PersonState` per person and checks it with one statement
that finds the person by any of their ids and returns their *stamp*: the newest id in each table a
change to them writes to (events, interactions, consents, rejections, merges into them) and whether
their profile waits for a rebuild. Any change (an event, a purchase, a consent, a "that's not me", a
merge, an erasure) changes the stamp or removes the person, and the next call reads them afresh. The
stamp is read before the state is loaded, so a change that lands in between is seen on the next call.

The catalog is cached the same way for everyone, checked against the newest item change and the newest
price or stock change. Both checks run on the driver's own connection (SQLAlchemy's statement
machinery costs more than these indexed lookups; the statements are `shopkeeper.store.serving`'s
`Lookup`). As a backstop for anything that changes without a
stamp (a trait expiring as time passes), a state is also reread after `STATE_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.decide.rules import CatalogRow, Past
from shopkeeper.profiles.traits import ResolvedTrait
from shopkeeper.recommend.base import FloatArray, IntArray
from shopkeeper.store.serving import Found, Stamp

STATE_SECONDS = 300.0  # a state is reread at least this often, changed or not
CATALOG_SECONDS = 60.0


@dataclass(slots=True)
class PersonState:
    """What decide needs about one person, as of `found.stamp`."""

    found: Found
    consent: dict[str, bool]
    traits: dict[str, ResolvedTrait]  # the rule traits; empty without personalization consent
    unit_ids: dict[str, str]  # their first userId / anonymousId: the experiment unit
    loaded: float = field(default_factory=time.monotonic)
    past: Past | None = None
    # (model version, repeats allowed) -> the model's best items for them, best first, and how many
    # were asked for (fewer come back when fewer can be ranked)
    ranked: dict[tuple[int, bool], tuple[IntArray, FloatArray, int]] = field(default_factory=dict)


class PersonStates:
    """Least recently used `PersonState`s, at most `size`; safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[int, PersonState] = OrderedDict()
        self._forgotten: OrderedDict[int, None] = OrderedDict()  # erased: never kept again
        self._lock = threading.Lock()

    def get(self, found: Found) -> PersonState | None:
        """Their state, if it is as of this stamp."""
        state = self.previous(found.person_id)
        return state if state is not None and state.found.stamp == found.stamp else None

    def previous(self, person_id: int) -> PersonState | None:
        """Their state as last kept, current or not (not if older than `STATE_SECONDS`)."""
        with self._lock:
            state = self._states.get(person_id)
            if state is None:
                return None
            if time.monotonic() - state.loaded > STATE_SECONDS:
                del self._states[person_id]
                return None
            self._states.move_to_end(person_id)
            return state

    def put(self, state: PersonState) -> None:
        if self.size <= 0:
            return
        with self._lock:
            if state.found.person_id in self._forgotten:
                return  # read while they were being erased
            self._states[state.found.person_id] = state
            self._states.move_to_end(state.found.person_id)
            while len(self._states) > self.size:
                self._states.popitem(last=False)

    def forget(self, person_ids: Sequence[int], *, erased: bool = False) -> None:
        """Drop these people's states; `erased`: and never keep them again (a read racing the erasure
        must not put them back)."""
        with self._lock:
            for person_id in person_ids:
                self._states.pop(person_id, None)
                if erased:
                    self._forgotten[person_id] = None
            while len(self._forgotten) > 100_000:
                self._forgotten.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)


class CatalogCache:
    """What the rules need of each item (`CatalogRow`), read once and kept until the catalog changes."""

    def __init__(self, read: Callable[[Sequence[str]], dict[str, CatalogRow]], size: int = 200_000) -> None:
        self._read = read
        self._size = size
        self._rows: dict[str, CatalogRow | None] = {}
        self._kept: dict[Any, Any] = {}  # what decide derives from the catalog (see `keep`)
        self._stamp: Stamp | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def check(self, stamp: Stamp) -> None:
        """Drop everything if the catalog changed since the rows were read (or they are old)."""
        with self._lock:
            if stamp != self._stamp or time.monotonic() - self._checked > CATALOG_SECONDS:
                self._rows = {}
                self._kept = {}
                self._stamp = stamp
                self._checked = time.monotonic()

    def memo(self, key: Any) -> Any:
        """What was kept under `key` since the catalog last changed, or None."""
        return self._kept.get(key)

    def keep(self, key: Any, value: Any) -> None:
        """Keep something derived from the catalog (the items in a category, say) until it changes."""
        kept = self._kept
        if len(kept) >= 1_000:
            kept = self._kept = {}
        kept[key] = value

    def get(self, item_ids: Sequence[str]) -> dict[str, CatalogRow]:
        rows = self._rows
        missing = [i for i in item_ids if i not in rows]
        if missing:
            found = self._read(missing)
            if len(rows) + len(missing) > self._size:
                rows = self._rows = {}
            for item_id in missing:
                rows[item_id] = found.get(item_id)  # None: not in the catalog
        return {i: row for i in item_ids if (row := rows.get(i)) is not None}
