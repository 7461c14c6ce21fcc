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
machinery costs more than these indexed lookups). As a backstop for anything that changes without a
stamp (a trait expiring as time passes), a state is also reread after `STATE_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine

from shopkeeper.profiles.traits import ResolvedTrait
from shopkeeper.recommend.base import FloatArray, IntArray
from shopkeeper.rules import CatalogRow, Past
from shopkeeper.store.identity import LOOKUP_ORDER

STATE_SECONDS = 300.0  # a state is reread at least this often, changed or not
CATALOG_SECONDS = 60.0

Stamp = tuple[Any, ...]

_STAMP_COLUMNS = """
    (SELECT max(x.id) FROM interactions x WHERE x.person_id = {person}),
    (SELECT max(e.id) FROM events e WHERE e.person_id = {person}),
    (SELECT max(c.id) FROM consents c WHERE c.person_id = {person}),
    (SELECT max(r.id) FROM trait_rejections r WHERE r.person_id = {person}),
    (SELECT max(m.id) FROM merges m WHERE m.into_person_id = {person}),
    (SELECT count(*) FROM profile_dirty d WHERE d.person_id = {person})"""
_NEWEST_INTERACTION, _NEWEST_EVENT, _DIRTY = 0, 1, 5  # positions in the stamp
_SAID = slice(2, 5)  # consents, rejections, merges: what changes consent, traits or who they are


def _placeholder(engine: Engine) -> str:
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


@dataclass(frozen=True, slots=True)
class Found:
    person_id: int
    stamp: Stamp

    @property
    def newest_interaction(self) -> int | None:
        value = self.stamp[_NEWEST_INTERACTION]
        return None if value is None else int(value)

    @property
    def dirty(self) -> bool:
        return bool(self.stamp[_DIRTY])

    def rebuilt(self) -> Found:
        """The same stamp once the profile has been rebuilt (which changes nothing else)."""
        return Found(self.person_id, (*self.stamp[:_DIRTY], 0))

    def newest_event(self) -> int:
        value = self.stamp[_NEWEST_EVENT]
        return -1 if value is None else int(value)

    def said_the_same(self, other: Found) -> bool:
        """No consent, rejection or merge between the two stamps (events and interactions may differ)."""
        return self.person_id == other.person_id and self.stamp[_SAID] == other.stamp[_SAID]


class Lookup:
    """The per-call statements, on the driver's connection from the engine's pool."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        p = _placeholder(engine)
        kinds = ", ".join(f"'{k}'" for k in LOOKUP_ORDER)
        self._by_value = (
            f"SELECT i.kind, i.person_id, {_STAMP_COLUMNS.format(person='i.person_id')} "
            f"FROM identities i WHERE i.value = {p} AND i.kind IN ({kinds})"
        )
        self._by_person = f"SELECT {_STAMP_COLUMNS.format(person=p)}"
        self._catalog = "SELECT (SELECT max(updated_at) FROM items), (SELECT max(id) FROM item_history)"
        # Both in one round trip: the catalog's stamp, then the person's rows (NULLs when unknown).
        self._catalog_and_value = (
            "SELECT (SELECT max(updated_at) FROM items), (SELECT max(id) FROM item_history), "
            f"i.kind, i.person_id, {_STAMP_COLUMNS.format(person='i.person_id')} "
            f"FROM (SELECT 1 AS one) AS one LEFT JOIN identities i "
            f"ON i.value = {p} AND i.kind IN ({kinds})"
        )
        # A track can state traits too (`context.shopkeeper.stated`): any event that mentions "stated"
        # counts as one that may have (a false alarm only costs a full read).
        self._said_since = (
            f"SELECT 1 FROM events WHERE person_id = {p} AND id > {p} "
            f"AND (type <> 'track' OR payload LIKE {p}) LIMIT 1"
        )
        self._rank = {kind: rank for rank, kind in enumerate(LOOKUP_ORDER)}
        self._prepare = engine.dialect.name == "postgresql"

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._run([(sql, params)])[0]

    def _run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Each statement's rows, all on one pooled connection (a checkout and its reset cost a round
        trip on PostgreSQL). There, the statements are prepared once per connection: planning the
        stamp's subqueries costs more than running them."""
        raw = self._engine.raw_connection()
        driver = cast(Any, raw.driver_connection)
        try:
            if self._prepare:
                # psycopg: no BEGIN/ROLLBACK round trips around these reads (it would also forget its
                # prepared statements on every rollback).
                driver.autocommit = True
            cursor = raw.cursor()
            try:
                results = []
                for sql, params in statements:
                    if self._prepare:
                        cast(Any, cursor).execute(sql, tuple(params), prepare=True)
                    else:
                        cursor.execute(sql, tuple(params))
                    results.append(list(cursor.fetchall()))
                return results
            finally:
                cursor.close()
        finally:
            if self._prepare:
                driver.autocommit = False
            raw.close()

    def find(self, refs: Sequence[str | None]) -> Found | None:
        """The person behind the first of `refs` that is known (a userId before an email before an
        anonymousId, as `find_person`), with their stamp."""
        return self.check(refs, catalog=False)[0]

    def check(self, refs: Sequence[str | None], *, catalog: bool = True) -> tuple[Found | None, Stamp]:
        """`find`, and the catalog's stamp (empty when not asked for), in one round of statements."""
        usable = [r for r in refs if r is not None and "\x00" not in r and len(r) <= 255]
        # (no stored id can hold NUL or be longer; PostgreSQL text cannot even hold NUL)
        stamp: Stamp = ()
        if catalog:
            if not usable:
                return None, tuple(self._rows(self._catalog, ())[0])
            rows = self._rows(self._catalog_and_value, (usable[0],))
            stamp, rows = tuple(rows[0][:2]), [row[2:] for row in rows if row[2] is not None]
            found = self._best(rows)
            usable = usable[1:]
            if found is not None:
                return found, stamp
        for ref in usable:
            found = self._best(self._rows(self._by_value, (ref,)))
            if found is not None:
                return found, stamp
        return None, stamp

    def _best(self, rows: list[Any]) -> Found | None:
        """Of one id's rows (one per kind it is known as), the person by the surest kind."""
        if not rows:
            return None
        best = min(rows, key=lambda row: self._rank[row[0]])
        return Found(int(best[1]), tuple(best[2:]))

    def stamp_of(self, person_id: int) -> Found:
        rows = self._rows(self._by_person, (person_id,) * _STAMP_COLUMNS.count("{person}"))
        return Found(person_id, tuple(rows[0]))

    def only_actions_since(self, person_id: int, event_id: int) -> bool:
        """Whether every event of the person after `event_id` is a plain `track` (an action: a view, a
        cart, an order), which cannot change what they stated."""
        return not self._rows(self._said_since, (person_id, event_id, '%"stated"%'))


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
