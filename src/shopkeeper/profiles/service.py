"""A person's profile: who they are, and each trait's winning value with its provenance."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.profiles.traits import SOURCES, ResolvedTrait, resolve
from shopkeeper.store import Store
from shopkeeper.store.identity import PersonSummary
from shopkeeper.store.traits import TraitRecord


@dataclass(frozen=True, slots=True)
class Profile:
    summary: PersonSummary
    traits: dict[str, ResolvedTrait]
    as_of: datetime

    def by_source(self) -> dict[str, list[ResolvedTrait]]:
        grouped: dict[str, list[ResolvedTrait]] = {source: [] for source in SOURCES}
        for trait in sorted(self.traits.values(), key=lambda t: t.key):
            grouped[trait.source].append(trait)
        return grouped

    def to_json(self) -> dict[str, object]:
        return {
            **self.summary.to_json(),
            "as_of": self.as_of.isoformat(),
            "traits": [trait_to_json(t) for group in self.by_source().values() for t in group],
        }


def trait_to_json(trait: ResolvedTrait) -> dict[str, object]:
    record = trait.record
    return {
        "key": record.key,
        "value": record.value,
        "source": record.source,
        "updated_at": record.updated_at.isoformat(),
        "evidence": dict(record.evidence),
        "confidence": record.confidence,
        "confirmed_at": record.confirmed_at.isoformat() if record.confirmed_at else None,
        "weight": round(trait.weight, 4),
        "age_days": round(trait.age.total_seconds() / 86400, 1),
        "expires_at": trait.expires_at.isoformat() if trait.expires_at else None,
        "needs_confirmation": trait.needs_confirmation,
        "why": trait.reason(),
        "overridden": [
            {
                "source": c.record.source,
                "value": c.record.value,
                "status": c.status,
                "updated_at": c.record.updated_at.isoformat(),
            }
            for c in trait.considered
        ],
    }


class ProfileService:
    """Reads resolved profiles. A person whose events changed is rebuilt on read, so reads see writes.

    Decay and expiry are measured against the wall clock, now, like retention (`maintenance purge`):
    one clock everywhere. An imported history is as old as its own dates say; the demo replays its
    sample shifted so that it ends today (`import_orders(replay_until=...)`).
    """

    def __init__(self, store: Store, *, now: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._traits = store.traits
        self._builder = ProfileBuilder(store)
        self._now = now or (lambda: datetime.now(UTC))

    @property
    def builder(self) -> ProfileBuilder:
        return self._builder

    def clock(self) -> datetime:
        """Now: what every age, decay and expiry is measured against."""
        return self._now()

    def traits_of(
        self, person_id: int, *, keys: Collection[str] | None = None, conn: Connection | None = None
    ) -> dict[str, ResolvedTrait]:
        """Each trait's winning value for this person, as of now.

        `keys` limits the answer to these traits (each is resolved on its own, so they resolve as they
        would among all the others), in one query. `conn` is a read connection to use; when the person
        must be rebuilt first, its transaction is ended (it is a read: nothing is lost), so that the
        rebuild's write transaction never waits on it.
        """
        if keys is not None:
            return self._some_traits_of(person_id, tuple(keys), conn)
        with self._store.engine.connect() as conn:
            dirty = self._traits.is_dirty(person_id, conn)
            if not dirty:
                records = self._traits.load(person_id, conn)
        if dirty:
            self._builder.rebuild([person_id])
            records = self._traits.load(person_id)
        return resolve(records, self.clock())

    def _some_traits_of(
        self, person_id: int, keys: tuple[str, ...], conn: Connection | None
    ) -> dict[str, ResolvedTrait]:
        if conn is None:
            with self._store.engine.connect() as own:
                return self._some_traits_of(person_id, keys, own)
        records, dirty = self._traits.some_and_dirty(conn, person_id, keys)
        if dirty:
            conn.rollback()
            self._builder.rebuild([person_id])
            records, _ = self._traits.some_and_dirty(conn, person_id, keys)
        return resolve(records, self.clock()) if records else {}

    def records_of(self, person_id: int, conn: Connection | None = None) -> list[TraitRecord]:
        """The person's trait rows as stored (every source), unresolved."""
        return self._traits.load(person_id, conn)

    def get(self, external_id: str) -> Profile:
        """The profile of the person behind any of their ids. Raises NotFound."""
        summary = self._store.person_summary(external_id)
        resolved = self.traits_of(summary.person_id)
        return Profile(summary=summary, traits=resolved, as_of=self.clock())
