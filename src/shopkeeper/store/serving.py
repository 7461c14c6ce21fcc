"""What decide reads: the one query per call that says whether what it keeps is current, and the rest.

`Lookup` finds a person by any of their ids and returns their *stamp*, the newest id in each table a
change to them writes to; `shopkeeper.decide.cache` says why that is enough to keep a person's state
between calls. `SqlServing` reads what a decision needs when the stamp says it changed: the person's
history, and (for the background work) the recently active and the recently erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, bindparam, func, select

from shopkeeper.store.identity import LOOKUP_ORDER
from shopkeeper.store.schema import audit_log, interactions

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


_RECENT_PEOPLE = (
    select(interactions.c.person_id)
    .group_by(interactions.c.person_id)
    .order_by(func.max(interactions.c.at).desc(), interactions.c.person_id)
    .limit(bindparam("limit"))
)
_ERASURES = select(audit_log.c.id, audit_log.c.person_id).where(
    audit_log.c.id > bindparam("after"), audit_log.c.action == "erase"
)
_HISTORY = (
    select(interactions.c.item_id, interactions.c.kind, interactions.c.at, interactions.c.message_id)
    .where(interactions.c.person_id == bindparam("person"))
    .order_by(interactions.c.at, interactions.c.id)
)


class SqlServing:
    """What decide reads besides the per-call stamps."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def history(self, person_id: int) -> Sequence[Any]:
        """The person's interactions, oldest first: `(item_id, kind, at, message_id)` rows."""
        with self._engine.connect() as conn:
            return conn.execute(_HISTORY, {"person": person_id}).all()

    def recently_active(self, limit: int) -> list[int]:
        """The `limit` people with the newest interactions, newest first."""
        with self._engine.connect() as conn:
            return list(conn.scalars(_RECENT_PEOPLE, {"limit": limit}).all())

    def newest_audit_id(self) -> int:
        """Where the audit log ends now (0 when it is empty): where to start looking for erasures."""
        with self._engine.connect() as conn:
            return int(conn.scalar(select(func.max(audit_log.c.id))) or 0)

    def erasures_after(self, after: int) -> list[tuple[int, int | None]]:
        """The erasures the audit log names after the id `after`: `(audit id, person id)` pairs."""
        with self._engine.connect() as conn:
            return [(row.id, row.person_id) for row in conn.execute(_ERASURES, {"after": after})]
