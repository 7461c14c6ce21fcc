"""Traits in the database: one row per person, key and source, plus the set of people to rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Insert, Table, and_, delete, insert, or_, select

from shopkeeper.profiles.derive import INFERRED_KEYS
from shopkeeper.profiles.traits import TraitRecord
from shopkeeper.store.schema import profile_dirty, traits

EVENT_SOURCES = ("stated", "observed")  # rebuilt from the event log, with the guesses in INFERRED_KEYS
_CHUNK = 500


def mark_dirty(conn: Connection, person_ids: Iterable[int]) -> None:
    """Note, inside the caller's write transaction, that these people's traits must be rebuilt."""
    rows = [{"person_id": p} for p in set(person_ids)]
    if rows:
        conn.execute(insert_ignoring_duplicates(conn, profile_dirty), rows)


def insert_ignoring_duplicates(conn: Connection, table: Table) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` in the connection's dialect (SQLite and PostgreSQL)."""
    # The dialects load here, once: the PostgreSQL one costs a tenth of a second at every CLI start.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    return sqlite.insert(table).on_conflict_do_nothing()


def forget_person(conn: Connection, person_id: int) -> None:
    """Drop a person's traits and dirty mark (they were merged away, or erased)."""
    conn.execute(delete(traits).where(traits.c.person_id == person_id))
    conn.execute(delete(profile_dirty).where(profile_dirty.c.person_id == person_id))


class SqlTraits:
    """Reads and writes trait rows. Resolution is not done here: see `shopkeeper.profiles.traits`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load(self, person_id: int, conn: Connection | None = None) -> list[TraitRecord]:
        if conn is None:
            with self._engine.connect() as own:
                return self.load(person_id, own)
        rows = conn.execute(select(traits).where(traits.c.person_id == person_id))
        return [to_record(r) for r in rows]

    def is_dirty(self, person_id: int, conn: Connection) -> bool:
        query = select(profile_dirty.c.person_id).where(profile_dirty.c.person_id == person_id)
        return conn.scalar(query) is not None

    def dirty(self, conn: Connection, limit: int | None = None) -> list[int]:
        query = select(profile_dirty.c.person_id).order_by(profile_dirty.c.person_id)
        if limit is not None:
            query = query.limit(limit)
        return [int(p) for p in conn.scalars(query)]

    @staticmethod
    def replace_event_traits(conn: Connection, rebuilt: dict[int, Sequence[TraitRecord]]) -> None:
        """Swap these people's event-derived traits for freshly derived ones, and clear their dirty mark."""
        people = list(rebuilt)
        for start in range(0, len(people), _CHUNK):
            chunk = people[start : start + _CHUNK]
            conn.execute(
                delete(traits).where(
                    traits.c.person_id.in_(chunk),
                    or_(
                        traits.c.source.in_(EVENT_SOURCES),
                        and_(traits.c.source == "inferred", traits.c.key.in_(INFERRED_KEYS)),
                    ),
                )
            )
            conn.execute(delete(profile_dirty).where(profile_dirty.c.person_id.in_(chunk)))
        rows = [_to_row(person_id, r) for person_id, records in rebuilt.items() for r in records]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(traits), rows[start : start + 5000])

    def write_inferred(self, conn: Connection, person_id: int, records: Sequence[TraitRecord]) -> None:
        """Replace the inferred traits a model wrote for a person."""
        keys = [r.key for r in records]
        conn.execute(
            delete(traits).where(
                traits.c.person_id == person_id, traits.c.source == "inferred", traits.c.key.in_(keys)
            )
        )
        if records:
            conn.execute(insert(traits), [_to_row(person_id, r) for r in records])


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _to_row(person_id: int, record: TraitRecord) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "key": record.key,
        "source": record.source,
        "value": _dumps(record.value),
        "updated_at": record.updated_at,
        "confirmed_at": record.confirmed_at,
        "confidence": record.confidence,
        "evidence": _dumps(dict(record.evidence)),
    }


def to_record(row: Any) -> TraitRecord:
    """A `traits` row as a TraitRecord."""
    return TraitRecord(
        key=row.key,
        value=orjson.loads(row.value),
        source=row.source,
        updated_at=row.updated_at,
        evidence=orjson.loads(row.evidence),
        confidence=row.confidence,
        confirmed_at=row.confirmed_at,
    )
