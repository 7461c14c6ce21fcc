"""Data rights: export everything about a person, erase them everywhere, and purge what is too old.

Erasure deletes, in one write transaction, the person and everyone merged into them from: the event log,
identities, merges, traits and the rebuild queue, interactions (the model's input), decisions (what they
were shown), the consent ledger and rejected guesses. The audit log keeps an entry that names only the
internal number. Model artifacts hold no person's id or history (see `shopkeeper.training`); item-level
statistics that their purchases fed into drop out at the next `train`, which reads only the event log.
On SQLite, deleted pages are overwritten (`secure_delete`) and the write-ahead log is truncated afterwards,
so the erased text is not left in the database file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, or_, select

from shopkeeper.errors import NotFound
from shopkeeper.privacy import consent, rejections
from shopkeeper.privacy.service import Actor, PrivacyService, audit, person_ids_of
from shopkeeper.profiles.service import ProfileService
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import (
    consents,
    decisions,
    events,
    identities,
    interactions,
    merges,
    model_versions,
    people,
    profile_dirty,
    trait_rejections,
    traits,
)
from shopkeeper.store.traits import mark_dirty
from shopkeeper.wording import counted

EXPORT_EVENTS = 100_000


def export(
    privacy: PrivacyService, profiles: ProfileService, store: Store, ref: str, actor: Actor
) -> dict[str, Any]:
    """Everything the shop holds about a person, as JSON, with a readable summary first."""
    privacy.settle()  # decisions made just before are counted
    profile = privacy.profile(ref, actor, audited=False)  # the export itself is audited below
    person_id = int(profile["person_id"])
    with store.engine.connect() as conn:
        everyone = person_ids_of(conn, person_id)
        external = [
            r.value
            for r in conn.execute(select(identities.c.value).where(identities.c.person_id.in_(everyone)))
        ]
        stored_events = [
            orjson.loads(p)
            for p in conn.scalars(
                select(events.c.payload)
                .where(events.c.person_id.in_(everyone))
                .order_by(events.c.timestamp, events.c.id)
                .limit(EXPORT_EVENTS)
            )
        ]
        shown = [
            {
                "decision_id": r.decision_id,
                "placement": r.placement,
                "at": r.at.isoformat(),
                "personalized": bool(r.personalized),
                "model_version": r.model_version,
                "items": orjson.loads(r.items),
                "reasons": orjson.loads(r.reasons),
                "context": None if r.context is None else orjson.loads(r.context),
            }
            for r in conn.execute(
                select(decisions).where(_decisions_of(everyone, external)).order_by(decisions.c.at)
            )
        ]
        ledger = consent.history(conn, everyone)
        rejected = [r.to_json() for rs in rejections.load(conn, everyone).values() for r in rs]
    privacy.audit_now(actor, "export", person_id, events=len(stored_events), decisions=len(shown))
    return {
        "summary": _summary(profile, len(stored_events), len(shown), ledger),
        "exported_at": datetime.now(UTC).isoformat(),
        "person": profile,
        "events": stored_events,
        "consent_history": ledger,
        "rejected_guesses": rejected,
        "decisions": shown,
        "messages": [],  # shopkeeper sends no messages yet; an outbox would be exported here
    }


def _summary(profile: dict[str, Any], n_events: int, n_decisions: int, ledger: list[dict[str, Any]]) -> str:
    told = sum(1 for t in profile["traits"] if t["source"] == "stated")
    saw = sum(1 for t in profile["traits"] if t["source"] == "observed")
    guessed = sum(1 for t in profile["traits"] if t["source"] == "inferred")
    agreed = sorted(p for p, c in profile["consent"].items() if c["granted"])
    return (
        f"We hold {counted(n_events, 'event')} about you (what you did in the shop), "
        f"{counted(told, 'thing')} you told us, {saw} we saw and {guessed} we guessed. We have chosen what "
        f"to show you {counted(n_decisions, 'time')}. "
        f"You allow us to use your data for: {', '.join(agreed) or 'nothing beyond what is necessary'} "
        f"({counted(len(ledger), 'consent change')} recorded). You can correct any of "
        "it, or ask us to erase it all."
    )


def _decisions_of(person_ids: list[int], external: list[str]) -> Any:
    clauses = [decisions.c.person_id.in_(person_ids)]
    if external:
        clauses.append(decisions.c.external_id.in_(external))
    return or_(*clauses)


def erase(
    privacy: PrivacyService,
    store: Store,
    ref: str,
    actor: Actor,
    *,
    forget: Callable[[list[int]], None] | None = None,
) -> dict[str, Any]:
    """Delete the person everywhere. Returns what was deleted, counted. A later `GET` answers 404.

    Decisions this process made for them are stored first, and so deleted below; a decision still
    waiting in another process's log is dropped when written (see `DecisionLog`)."""
    privacy.settle()
    with write_transaction(store.engine) as conn:
        person_id = store.identities.find_person(ref, conn)
        if person_id is None:
            raise NotFound(f"no person is known by the id {ref!r}", field="id")
        everyone = person_ids_of(conn, person_id)
        external = [
            r.value
            for r in conn.execute(select(identities.c.value).where(identities.c.person_id.in_(everyone)))
        ]
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
        models = conn.scalar(
            select(model_versions.c.version).order_by(model_versions.c.version.desc()).limit(1)
        )
        audit(conn, actor, "erase", person_id, **counts)
    if forget is not None:
        forget(everyone)
    _scrub(store)
    return {
        "erased": True,
        "deleted": counts,
        "note": (
            "Their purchases no longer feed any recommendation: models hold no person's data, and "
            "item-level statistics are recomputed from the event log at the next `shopkeeper train`."
            if models is not None
            else "No model had been trained."
        ),
    }


def _scrub(store: Store) -> None:
    """SQLite keeps old page images in the write-ahead log until a checkpoint: fold them in and truncate."""
    if store.backend == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def purge(
    store: Store, *, retention_days: int, inferred_retention_days: int, now: datetime | None = None
) -> dict[str, int]:
    """Delete events, interactions and decisions older than `retention_days`, and guesses whose newest
    evidence is older than `inferred_retention_days`. Idempotent: a second run deletes nothing."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    inferred_cutoff = now - timedelta(days=inferred_retention_days)
    with write_transaction(store.engine) as conn:
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
        audit(
            conn,
            Actor("cli", "maintenance purge"),
            "purge",
            None,
            cutoff=cutoff.isoformat(),
            inferred_cutoff=inferred_cutoff.isoformat(),
            **counts,
        )
    _scrub(store)
    return counts
