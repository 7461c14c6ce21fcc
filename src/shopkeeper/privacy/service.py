"""What a person (through their link) or the shop (with its admin key) can do with a person's data:
see it explained, state preferences, choose consent, reject a guess. Every access is audited.

Export and erase are in `shopkeeper.privacy.rights`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy import consent
from shopkeeper.privacy.consent import Purposes
from shopkeeper.privacy.preferences import parse_preferences, preference_event
from shopkeeper.profiles import rejections
from shopkeeper.profiles.service import ProfileService, trait_to_json
from shopkeeper.profiles.traits import SOURCE_WORDS, DecayPolicy, expired_traits, policy_for
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.personas import PERSONA_TRAIT
from shopkeeper.store.privacy import SqlPrivacy
from shopkeeper.store.traits import TraitRecord

RULE = (
    "What you told us (stated) always wins. Otherwise what we saw (observed) beats what we guessed "
    "(inferred). Within one source the newest evidence wins. Observed and guessed values fade with age "
    "and expire; a guess you rejected is never made again from the same evidence."
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: the shop (an admin key) or the person themselves (through their signed link)."""

    kind: str  # admin | person | cli
    label: str  # e.g. "admin key sk_admin_ab12"; never a person's id or email

    @property
    def channel(self) -> str:
        return {"person": "preference_centre", "admin": "api"}.get(self.kind, self.kind)


LIVE_WISHES = ("open", "notified")  # a profile shows the wishes still in force; the export shows them all


def audit(conn: Connection, actor: Actor, action: str, person_id: int | None, **detail: Any) -> None:
    """One audit entry, inside the caller's transaction. Names the person by internal id only."""
    SqlPrivacy.audit(conn, actor.label, action, person_id, detail)


def decay_json(policy: DecayPolicy) -> dict[str, int | None]:
    return {
        "half_life_days": policy.half_life.days if policy.half_life else None,
        "expires_after_days": policy.expire_after.days if policy.expire_after else None,
    }


def candidate_json(
    record: TraitRecord,
    status: str,
    weight: float,
    as_of: datetime,
    *,
    why: str | None = None,
    beaten_by: str | None = None,
) -> dict[str, Any]:
    """One source's value of a trait in explain: its status (won, outranked, expired), its age against
    the source's decay settings, and why it has that status."""
    policy = policy_for(record.key, record.source)
    age = max(as_of - record.updated_at, timedelta(0))
    days = round(age.total_seconds() / 86400, 1)
    expires_at = record.updated_at + policy.expire_after if policy.expire_after is not None else None
    if why is None and status == "expired":
        assert policy.expire_after is not None  # only a value with an expiry can expire
        why = (
            f"{SOURCE_WORDS[record.source]} {record.value!r}, but its newest evidence is {days:g} days old "
            f"and {record.source} {record.key} values expire after {policy.expire_after.days} days, so it "
            f"expired on {expires_at:%d %b %Y}"
        )
    elif why is None:
        why = f"{SOURCE_WORDS[record.source]} {record.value!r}, but {beaten_by} beats {record.source}"
    return {
        "source": record.source,
        "value": record.value,
        "status": status,
        "weight": round(weight, 4),
        "updated_at": record.updated_at.isoformat(),
        "age_days": days,
        "expires_at": expires_at.isoformat() if expires_at is not None else None,
        "decay": decay_json(policy),
        "why": why,
        "evidence": dict(record.evidence),
    }


class PrivacyService:
    def __init__(
        self,
        store: Store,
        profiles: ProfileService,
        ingestor: Ingestor,
        purposes: Purposes,
        *,
        on_change: Callable[[list[int]], None] | None = None,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._ingestor = ingestor
        self.purposes = purposes
        self._on_change = on_change or (lambda _ids: None)
        self._settle = settle or (lambda: None)

    def settle(self) -> None:
        """Store what this process still holds to write about people (its decision log), so that an
        export counts it and an erasure deletes it."""
        self._settle()

    # ---- lookups ------------------------------------------------------------------------------------

    def find(self, ref: str) -> int:
        person_id = self._store.identities.find_person(ref)
        if person_id is None:
            raise NotFound(f"no person is known by the id {ref!r}", field="id")
        return person_id

    def audit_now(self, actor: Actor, action: str, person_id: int | None, **detail: Any) -> None:
        with write_transaction(self._store.engine) as conn:
            audit(conn, actor, action, person_id, **detail)

    # ---- reading ------------------------------------------------------------------------------------

    def profile(self, ref: str, actor: Actor, *, audited: bool = True) -> dict[str, Any]:
        """The person with their traits (as `GET /v1/people/{id}`), and their consent. `audited=False`
        when the caller's own action is audited already (a change answers with the profile)."""
        profile = self._profiles.get(ref)
        if audited:
            self.audit_now(actor, "read_profile", profile.summary.person_id)
        with self._store.engine.connect() as conn:
            choices = self.purposes.current(conn, profile.summary.person_id)
            everyone = self._store.identities.with_merged(profile.summary.person_id, conn)
            wishes = [
                w.to_json() for w in self._store.moments.wishes_of(conn, everyone) if w.status in LIVE_WISHES
            ]
        return {
            **profile.to_json(),
            "consent": {p: c.to_json() for p, c in choices.items()},
            "wishes": wishes,
        }

    def explain(self, ref: str, actor: Actor) -> dict[str, Any]:
        """Every trait and how it was resolved: which source won, what it beat, and why."""
        profile = self._profiles.get(ref)
        person_id = profile.summary.person_id
        self.audit_now(actor, "explain", person_id)
        with self._store.engine.connect() as conn:
            rejected = rejections.load(conn, self._store.identities.with_merged(person_id, conn))
            choices = self.purposes.current(conn, person_id)
            records = self._profiles.records_of(person_id, conn)
        as_of = profile.as_of
        explained = []
        for trait in sorted(profile.traits.values(), key=lambda t: t.key):
            record = trait.record
            candidates = [candidate_json(record, "won", trait.weight, as_of, why=trait.reason())] + [
                candidate_json(c.record, c.status, c.weight, as_of, beaten_by=record.source)
                for c in trait.considered
            ]
            explained.append(
                {
                    **trait_to_json(trait),
                    "source_words": SOURCE_WORDS[record.source],
                    "decay": decay_json(policy_for(record.key, record.source)),
                    "candidates": candidates,
                }
            )
        gone = [
            {
                "key": key,
                "value": None,
                "status": "expired",
                "why": f"No value won: all {len(values)} expired (see each candidate's why)"
                if len(values) > 1
                else "No value won: its only value expired",
                "candidates": [candidate_json(r, "expired", 0.0, as_of) for r in values],
            }
            for key, values in sorted(expired_traits(records, as_of).items())
        ]
        return {
            "person_id": person_id,
            "as_of": as_of.isoformat(),
            "rule": RULE,
            "traits": explained,
            "expired_traits": gone,
            "rejected_guesses": [r.to_json() for rs in rejected.values() for r in rs],
            "consent": {p: c.to_json() for p, c in choices.items()},
        }

    def consent_of(self, ref: str, actor: Actor, *, audited: bool = True) -> dict[str, Any]:
        person_id = self.find(ref)
        if audited:
            self.audit_now(actor, "read_consent", person_id)
        with self._store.engine.connect() as conn:
            choices = self.purposes.current(conn, person_id)
            ledger = consent.history(conn, self._store.identities.with_merged(person_id, conn))
        return {"purposes": {p: c.to_json() for p, c in choices.items()}, "history": ledger}

    # ---- changing -----------------------------------------------------------------------------------

    def set_consent(self, ref: str, body: Any, actor: Actor) -> dict[str, Any]:
        changes = self.purposes.check(body)
        person_id = self.find(ref)
        with write_transaction(self._store.engine) as conn:
            consent.record(conn, person_id, changes, channel=actor.channel, actor=actor.label)
            audit(conn, actor, "set_consent", person_id, purposes=changes)
        self._on_change([person_id])
        return self.consent_of(ref, actor, audited=False)

    def state_preferences(self, ref: str, body: Any, actor: Actor) -> dict[str, Any]:
        """Write the person's stated preferences as a stated `identify` event; return the new profile."""
        stated = parse_preferences(body)
        person_id = self.find(ref)
        ids = dict(self._store.identities.external_ids([person_id]))
        kind = "user_id" if "user_id" in ids else "anonymous_id"
        if kind not in ids:
            raise InvalidInput(
                "this person has no userId or anonymousId to state preferences for", field="id"
            )
        event = preference_event(
            (kind, ids[kind]), stated, channel=actor.channel, message_id=f"pref-{uuid.uuid4()}"
        )
        self._ingestor.ingest([event], where="preferences")
        self.audit_now(actor, "set_preferences", person_id, keys=sorted(stated))
        self._on_change([person_id])
        return self.profile(ref, actor, audited=False)

    def reject(self, ref: str, body: Any, actor: Actor) -> dict[str, Any]:
        """ "That's not me": drop a guess, and never make it again from the same evidence."""
        if not isinstance(body, dict) or not isinstance(body.get("key"), str) or not body["key"]:
            raise InvalidInput('send {"key": trait, "value": optional value or list element}', field="key")
        extra = set(body) - {"key", "value"}
        if extra:
            raise InvalidInput(f"unknown field {sorted(extra)[0]!r}", field=str(sorted(extra)[0])[:64])
        key, value = body["key"], body.get("value")
        person_id = self.find(ref)
        self._profiles.traits_of(person_id)  # bring the person's rows up to date first
        with write_transaction(self._store.engine) as conn:
            guess = next(
                (
                    r
                    for r in self._profiles.records_of(person_id, conn)
                    if r.key == key and r.source == "inferred"
                ),
                None,
            )
            rejections.reject(conn, person_id, guess, key, value)
            if key == PERSONA_TRAIT:  # a model's guess, not rebuilt from events: it goes now
                self._store.personas.drop_guess(conn, self._store.identities.with_merged(person_id, conn))
                persona_id = guess.evidence.get("persona_id") if guess is not None else None
                if value is not None and isinstance(persona_id, str):  # by id too: names change
                    self._store.traits.add_rejection(conn, person_id, key, persona_id, [], datetime.now(UTC))
            audit(conn, actor, "reject_guess", person_id, key=key)
        self._on_change([person_id])
        return self.profile(ref, actor, audited=False)
