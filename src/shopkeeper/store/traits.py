"""Traits in the database: one row per person, key and source, the set of people to rebuild, and the
guesses people rejected."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
)

from shopkeeper.store.bulk import BulkInsert
from shopkeeper.store.schema import people, profile_dirty, trait_rejections, traits

Source = Literal["stated", "observed", "inferred"]
# The traits derivation guesses (shopkeeper.profiles.derive), rebuilt with the event-sourced ones.
INFERRED_KEYS = ("favourite_categories", "favourite_colours", "favourite_sizes")


@dataclass(frozen=True, slots=True)
class TraitRecord:
    """One source's view of one trait of one person, with its evidence (the row the store keeps; its
    resolution is `shopkeeper.profiles.traits.resolve`)."""

    key: str
    value: Any
    source: Source
    updated_at: datetime  # when the evidence happened (the newest event behind it)
    evidence: Mapping[str, Any] = field(default_factory=dict)  # {"events": [...], "count": n} | {"model": ..}
    confidence: float | None = None  # inferred traits: the model's confidence, 0..1
    confirmed_at: datetime | None = None  # stated traits: when the person last said so


EVENT_SOURCES = ("stated", "observed")  # rebuilt from the event log, with the guesses in INFERRED_KEYS
_CHUNK = 500

# Some of a person's trait rows and their dirty mark in one round trip (a read that must be fast: decide
# makes one per call). The trait rows come first, so that their columns' types apply; the dirty mark, if
# any, is one more row with `dirty` = 1 and no key.
_SOME_TRAITS_AND_DIRTY = union_all(
    select(
        literal_column("0").label("dirty"),
        traits.c.key,
        traits.c.source,
        traits.c.value,
        traits.c.updated_at,
        traits.c.evidence,
        traits.c.confidence,
        traits.c.confirmed_at,
    ).where(traits.c.person_id == bindparam("person"), traits.c.key.in_(bindparam("keys", expanding=True))),
    select(literal_column("1"), null(), null(), null(), null(), null(), null(), null()).where(
        profile_dirty.c.person_id == bindparam("person")
    ),
)


_MARK_DIRTY = BulkInsert(profile_dirty, ("person_id",), skip_duplicates=True)


def mark_dirty(conn: Connection, person_ids: Iterable[int]) -> None:
    """Note, inside the caller's write transaction, that these people's traits must be rebuilt."""
    _MARK_DIRTY.execute(conn, [(p,) for p in set(person_ids)])


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

    @staticmethod
    def some_and_dirty(
        conn: Connection, person_id: int, keys: Collection[str]
    ) -> tuple[list[TraitRecord], bool]:
        """The person's rows of these traits, and whether they are marked for a rebuild: one round trip."""
        rows = conn.execute(_SOME_TRAITS_AND_DIRTY, {"person": person_id, "keys": tuple(keys)}).all()
        return [to_record(row) for row in rows if not row.dirty], any(row.dirty for row in rows)

    def is_dirty(self, person_id: int, conn: Connection) -> bool:
        query = select(profile_dirty.c.person_id).where(profile_dirty.c.person_id == person_id)
        return conn.scalar(query) is not None

    @staticmethod
    def dirty_among(conn: Connection, person_ids: Iterable[int]) -> list[int]:
        """Which of these people are marked for a rebuild."""
        ids = sorted(set(person_ids))
        found: list[int] = []
        for start in range(0, len(ids), _CHUNK):
            query = select(profile_dirty.c.person_id).where(
                profile_dirty.c.person_id.in_(ids[start : start + _CHUNK])
            )
            found += [int(p) for p in conn.scalars(query)]
        return found

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
        _INSERT_TRAITS.execute(
            conn, (_to_values(person_id, r) for person_id, records in rebuilt.items() for r in records)
        )

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

    @staticmethod
    def add_rejection(
        conn: Connection, person_id: int, key: str, value: Any, evidence: Sequence[str], at: datetime
    ) -> None:
        """Record, inside the caller's write transaction, that the person rejects a guess of `key` (its
        `value` only, unless None) resting on `evidence`; they are marked for a rebuild."""
        conn.execute(
            trait_rejections.insert(),
            {
                "person_id": person_id,
                "key": key,
                "value": None if value is None else orjson.dumps(value).decode(),
                "evidence": orjson.dumps(list(evidence)).decode(),
                "at": at,
            },
        )
        mark_dirty(conn, [person_id])

    @staticmethod
    def rejections(conn: Connection, person_ids: Sequence[int]) -> list[Row[Any]]:
        """These people's rejections, including those made before a merge by someone merged into them:
        rows of `trait_rejections` (`value` and `evidence` as JSON) with the `owner` they now belong to."""
        owner = func.coalesce(people.c.merged_into, trait_rejections.c.person_id)
        return list(
            conn.execute(
                select(trait_rejections, owner.label("owner"))
                .select_from(
                    trait_rejections.outerjoin(people, people.c.person_id == trait_rejections.c.person_id)
                )
                .where(
                    or_(
                        trait_rejections.c.person_id.in_(list(person_ids)),
                        people.c.merged_into.in_(list(person_ids)),
                    )
                )
            )
        )


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_TRAIT_COLUMNS = (
    "person_id",
    "key",
    "source",
    "value",
    "updated_at",
    "confirmed_at",
    "confidence",
    "evidence",
)
_INSERT_TRAITS = BulkInsert(traits, _TRAIT_COLUMNS)


def _to_values(person_id: int, record: TraitRecord) -> tuple[Any, ...]:
    """A trait row's values in `_TRAIT_COLUMNS` order."""
    return (
        person_id,
        record.key,
        record.source,
        _dumps(record.value),
        record.updated_at,
        record.confirmed_at,
        record.confidence,
        _dumps(dict(record.evidence)),
    )


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
