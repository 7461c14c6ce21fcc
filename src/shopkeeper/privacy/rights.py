"""Data rights: export everything about a person, erase them everywhere, and purge what is too old.

Erasure deletes, in one write transaction, the person and everyone merged into them from: the event log,
identities, merges, traits and the rebuild queue, interactions (the model's input), decisions (what they
were shown), the consent ledger, rejected guesses, their wishes, and every message and task (a pending
one is so cancelled: the worker finds it gone and sends nothing). The audit log keeps an entry that
names only the internal number. Model artifacts hold no person's id or history (see
`shopkeeper.training`); item-level statistics that their purchases fed into drop out at the next `train`,
which reads only the event log.
On SQLite, deleted pages are overwritten (`secure_delete`) and the write-ahead log is truncated afterwards,
so the erased text is not left in the database file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from shopkeeper.errors import NotFound
from shopkeeper.privacy import consent
from shopkeeper.privacy.service import Actor, PrivacyService, audit
from shopkeeper.profiles import rejections
from shopkeeper.profiles.service import ProfileService
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
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
        everyone = store.identities.with_merged(person_id, conn)
        external = [value for _, value in store.identities.external_ids(everyone, conn)]
        stored_events = store.events.payloads(everyone, conn, limit=EXPORT_EVENTS)
        shown = [
            {**shown, "at": shown["at"].isoformat()}
            for shown in store.privacy.decisions_of(conn, everyone, external)
        ]
        ledger = consent.history(conn, everyone)
        rejected = [r.to_json() for rs in rejections.load(conn, everyone).values() for r in rs]
        outreach = outreach_of(store, conn, everyone)
    privacy.audit_now(actor, "export", person_id, events=len(stored_events), decisions=len(shown))
    return {
        "summary": _summary(profile, len(stored_events), len(shown), ledger),
        "exported_at": datetime.now(UTC).isoformat(),
        "person": profile,
        "events": stored_events,
        "consent_history": ledger,
        "rejected_guesses": rejected,
        "decisions": shown,
        "wishes": outreach["wishes"],
        "messages": outreach["messages"],
    }


def outreach_of(store: Store, conn: Connection, person_ids: list[int]) -> dict[str, Any]:
    """The person's wishes, and every message and task (sent, pending or suppressed, with its reason and
    attempts), as the export shows them."""
    wishes = [w.to_json() for w in store.moments.wishes_of(conn, person_ids)]
    rows = store.outbox.messages(person_ids=person_ids, limit=1_000_000, conn=conn)
    tried: dict[int, list[dict[str, Any]]] = {}
    for attempt in store.outbox.attempts(conn, [r.id for r in rows]) if rows else []:
        tried.setdefault(attempt.outbox_id, []).append(
            {"at": attempt.at.isoformat(), "outcome": attempt.outcome, "detail": attempt.detail}
        )
    messages: list[dict[str, Any]] = [
        {
            "kind": "message",
            "id": r.id,
            "rule": r.rule,
            "trigger": r.trigger,
            "channel": r.channel or None,
            "status": r.status,
            "reason": r.reason,
            "created_at": r.created_at.isoformat(),
            "sent_at": None if r.sent_at is None else r.sent_at.isoformat(),
            "item_id": r.item_id,
            "variant_id": r.variant_id,
            "subject": r.subject,
            "text": r.body_text,
            "context": r.context,
            "attempts": tried.get(r.id, []),
        }
        for r in rows
    ]
    messages += [
        {
            "kind": "task",
            "id": t.id,
            "rule": t.rule,
            "channel": "staff",
            "status": t.status,
            "reason": None,
            "created_at": t.created_at.isoformat(),
            "outcome": t.outcome,
            "note": t.note,
            "text": t.context.get("why_now"),
        }
        for t in store.outbox.tasks(person_ids=person_ids, limit=1_000_000, conn=conn)
    ]
    return {"wishes": wishes, "messages": messages}


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
        everyone = store.identities.with_merged(person_id, conn)
        external = [value for _, value in store.identities.external_ids(everyone, conn)]
        counts = store.privacy.erase(conn, everyone, external)
        counts["wishes"] = store.moments.erase(conn, everyone)
        store.personas.erase(conn, everyone)  # their persona, and their place among its typical members
        counts.update(store.outbox.erase(conn, everyone))  # pending messages and open tasks die with them
        models = store.models.latest_version(conn)
        audit(conn, actor, "erase", person_id, **counts)
    if forget is not None:
        forget(everyone)
    store.privacy.scrub()
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


def purge(
    store: Store, *, retention_days: int, inferred_retention_days: int, now: datetime | None = None
) -> dict[str, int]:
    """Delete events, interactions and decisions older than `retention_days`, and guesses whose newest
    evidence is older than `inferred_retention_days`. Idempotent: a second run deletes nothing."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    inferred_cutoff = now - timedelta(days=inferred_retention_days)
    with write_transaction(store.engine) as conn:
        counts = store.privacy.purge(conn, cutoff, inferred_cutoff)
        audit(
            conn,
            Actor("cli", "maintenance purge"),
            "purge",
            None,
            cutoff=cutoff.isoformat(),
            inferred_cutoff=inferred_cutoff.isoformat(),
            **counts,
        )
    store.privacy.scrub()
    return counts
