"""Rebuild profiles from the event log, the source of truth: all of them, or the people marked dirty."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from shopkeeper.profiles import rejections
from shopkeeper.profiles.derive import CatalogEntry, derive_traits, product_ids
from shopkeeper.store import Store
from shopkeeper.store.catalog import profile_entries
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.traits import TraitRecord

CHUNK_PEOPLE = 500


class ProfileBuilder:
    """Derives event-based traits. Each chunk of people is read and rewritten in one write transaction,
    so an event that arrives meanwhile waits and marks its person dirty again afterwards."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def rebuild_all(self, *, on_progress: Callable[[int], None] | None = None) -> int:
        """Rebuild every person's event-derived traits. Returns how many people were rebuilt."""
        everyone = self._store.identities.person_ids()
        for start in range(0, len(everyone), CHUNK_PEOPLE):
            chunk = everyone[start : start + CHUNK_PEOPLE]
            self.rebuild(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
        return len(everyone)

    def refresh_dirty(self) -> int:
        """Rebuild the people whose events changed since their traits were derived."""
        done = 0
        while True:
            with self._store.engine.connect() as conn:
                dirty = self._store.traits.dirty(conn, limit=CHUNK_PEOPLE)
            if not dirty:
                return done
            self.rebuild(dirty)
            done += len(dirty)

    def rebuild(self, person_ids: Sequence[int]) -> None:
        """Derive these people's traits from all their events, in one write transaction."""
        with write_transaction(self._store.engine) as conn:
            self.rebuild_in(conn, person_ids)

    def rebuild_in(self, conn: Connection, person_ids: Sequence[int]) -> None:
        """`rebuild`, inside the caller's write transaction (the moment engine's)."""
        if person_ids:
            grouped: dict[int, list[dict[str, Any]]] = {p: [] for p in person_ids}
            for person_id, payload in self._store.events.payloads_by_person(person_ids, conn):
                grouped[person_id].append(payload)
            mentioned: set[str] = set()
            for person_events in grouped.values():
                mentioned |= product_ids(person_events)
            catalog = {
                item_id: CatalogEntry(category, attributes)
                for item_id, (category, attributes) in profile_entries(conn, sorted(mentioned)).items()
            }
            rejected = rejections.load(conn, list(grouped))
            rebuilt: dict[int, Sequence[TraitRecord]] = {
                person_id: rejections.apply(
                    derive_traits(person_events, catalog), rejected.get(person_id, [])
                )
                for person_id, person_events in grouped.items()
            }
            self._store.traits.replace_event_traits(conn, rebuilt)
