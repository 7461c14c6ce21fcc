"""Traits in the database: one row per person, key and source, plus the set of people to rebuild."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from shopkeeper.store.schema import profile_dirty


def mark_dirty(conn: Connection, person_ids: Iterable[int]) -> None:
    """Note, inside the caller's write transaction, that these people's traits must be rebuilt."""
    wanted = set(person_ids)
    if not wanted:
        return
    present = set(
        conn.scalars(select(profile_dirty.c.person_id).where(profile_dirty.c.person_id.in_(wanted)))
    )
    fresh = [{"person_id": p} for p in wanted - present]
    if fresh:
        conn.execute(profile_dirty.insert(), fresh)
