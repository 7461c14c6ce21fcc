"""A person's data across every table, for their rights: the audit log, what an export reads besides the
event log, an erasure's deletes, and the purge of what is too old.

An erasure's deletes run inside the caller's write transaction, so that it stays one transaction with
its audit entry. What the rights are, and their wording, is `shopkeeper.privacy.rights`'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, or_, select

from shopkeeper.store.schema import (
    audit_log,
    consents,
    decisions,
    events,
    identities,
    interactions,
    merges,
    people,
    profile_dirty,
    trait_rejections,
    traits,
)
from shopkeeper.store.traits import mark_dirty


class SqlPrivacy:
    """Audits, exports' reads, erasures and purges."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def audit(
        conn: Connection, actor: str, action: str, person_id: int | None, detail: Mapping[str, Any]
    ) -> None:
        """One audit entry, inside the caller's transaction. Names the person by internal id only."""
        conn.execute(
            audit_log.insert(),
            {
                "at": datetime.now(UTC),
                "actor": actor[:64],
                "action": action,
                "person_id": person_id,
                "detail": orjson.dumps(detail).decode(),
            },
        )

    @staticmethod
    def decisions_of(
        conn: Connection, person_ids: Sequence[int], external: Sequence[str]
    ) -> list[dict[str, Any]]:
        """What was shown to these people, or to any of their external ids before they were known,
        oldest first: each decision's id, placement, time, personalized or not, model version, items,
        reasons and the context it was asked with."""
        return [
            {
                "decision_id": r.decision_id,
                "placement": r.placement,
                "at": r.at,
                "personalized": bool(r.personalized),
                "model_version": r.model_version,
                "items": orjson.loads(r.items),
                "reasons": orjson.loads(r.reasons),
                "context": None if r.context is None else orjson.loads(r.context),
            }
            for r in conn.execute(
                select(decisions).where(_decisions_of(person_ids, external)).order_by(decisions.c.at)
            )
        ]

    @staticmethod
    def erase(conn: Connection, person_ids: Sequence[int], external: Sequence[str]) -> dict[str, int]:
        """Delete these people (a person and those merged into them, known by the `external` ids) from
        every table, inside the caller's write transaction. Returns the rows deleted, by what they were
        (the rebuild queue and the people rows themselves are not counted)."""
        everyone = list(person_ids)
        counts = {
            "events": conn.execute(delete(events).where(events.c.person_id.in_(everyone))).rowcount,
            "interactions": conn.execute(
                delete(interactions).where(interactions.c.person_id.in_(everyone))
            ).rowcount,
            "traits": conn.execute(delete(traits).where(traits.c.person_id.in_(everyone))).rowcount,
            "decisions": conn.execute(delete(decisions).where(_decisions_of(everyone, external))).rowcount,
            "consents": conn.execute(delete(consents).where(consents.c.person_id.in_(everyone))).rowcount,
            "rejected_guesses": conn.execute(
                delete(trait_rejections).where(trait_rejections.c.person_id.in_(everyone))
            ).rowcount,
            "identities": conn.execute(
                delete(identities).where(identities.c.person_id.in_(everyone))
            ).rowcount,
            "merges": conn.execute(
                delete(merges).where(
                    or_(merges.c.from_person_id.in_(everyone), merges.c.into_person_id.in_(everyone))
                )
            ).rowcount,
        }
        conn.execute(delete(profile_dirty).where(profile_dirty.c.person_id.in_(everyone)))
        conn.execute(delete(people).where(people.c.person_id.in_(everyone)))
        return counts

    @staticmethod
    def purge(conn: Connection, cutoff: datetime, inferred_cutoff: datetime) -> dict[str, int]:
        """Delete, inside the caller's write transaction, events, interactions and decisions older than
        `cutoff`, and guesses whose newest evidence is older than `inferred_cutoff`; the people whose
        events went are marked for a rebuild. Returns the rows deleted, and `people_to_rebuild`."""
        touched = {
            int(p)
            for p in conn.scalars(select(events.c.person_id).where(events.c.timestamp < cutoff).distinct())
        }
        counts = {
            "events": conn.execute(delete(events).where(events.c.timestamp < cutoff)).rowcount,
            "interactions": conn.execute(delete(interactions).where(interactions.c.at < cutoff)).rowcount,
            "decisions": conn.execute(delete(decisions).where(decisions.c.at < cutoff)).rowcount,
            "inferred_traits": conn.execute(
                delete(traits).where(traits.c.source == "inferred", traits.c.updated_at < inferred_cutoff)
            ).rowcount,
        }
        mark_dirty(conn, touched)  # their traits are rebuilt from what is left
        counts["people_to_rebuild"] = len(touched)
        return counts

    def scrub(self) -> None:
        """SQLite keeps old page images in the write-ahead log until a checkpoint: fold them in and
        truncate, so that deleted text is not left in the database's files. (PostgreSQL: nothing to do.)"""
        if self._engine.dialect.name == "sqlite":
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _decisions_of(person_ids: Sequence[int], external: Sequence[str]) -> Any:
    clauses = [decisions.c.person_id.in_(list(person_ids))]
    if external:
        clauses.append(decisions.c.external_id.in_(list(external)))
    return or_(*clauses)
