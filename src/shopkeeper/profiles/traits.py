"""Traits with provenance, and the one function that decides which value wins: `resolve`.

The rule, everywhere: **stated beats observed beats inferred**. Observed and inferred traits decay with a
half-life set per trait and expire; stated ones never decay, but carry the date the person last confirmed
them, and ask to be re-confirmed after a while. Every later part of shopkeeper (decide, templates,
moments, exports) reads traits through `resolve`, so no part can disagree with another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shopkeeper.store.traits import Source, TraitRecord

SOURCES: tuple[Source, ...] = ("stated", "observed", "inferred")
_RANK: dict[str, int] = {source: rank for rank, source in enumerate(SOURCES)}
SOURCE_WORDS: dict[str, str] = {"stated": "you told us", "observed": "we saw", "inferred": "we guessed"}

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DecayPolicy:
    """How fast a trait's evidence fades. `half_life=None` means a fact that does not fade (a count)."""

    half_life: timedelta | None
    expire_after: timedelta | None


@dataclass(frozen=True, slots=True)
class Considered:
    """A candidate that lost, and why: `outranked` by a stronger source, or `expired`."""

    record: TraitRecord
    status: Literal["outranked", "expired"]
    weight: float


@dataclass(frozen=True, slots=True)
class ResolvedTrait:
    """The value a trait has for a person now, where it came from, and what it beat."""

    record: TraitRecord
    weight: float  # 1.0 for stated; confidence x decay for the others
    age: timedelta
    expires_at: datetime | None
    needs_confirmation: bool  # stated, and not confirmed for `RECONFIRM_AFTER`
    considered: tuple[Considered, ...]

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def value(self) -> Any:
        return self.record.value

    @property
    def source(self) -> Source:
        return self.record.source

    def reason(self) -> str:
        """One sentence on why this value won."""
        beaten = [c for c in self.considered if c.status == "outranked"]
        expired = [c for c in self.considered if c.status == "expired"]
        text = SOURCE_WORDS[self.source]
        if beaten:
            others = ", ".join(f"{c.record.source} {c.record.value!r}" for c in beaten)
            text += f"; {self.source} beats {others}"
        if expired:
            text += f"; {len(expired)} older value(s) expired"
        return text


RECONFIRM_AFTER = timedelta(days=365)

# Aggregates are counts of what happened: they are true as of the newest event and do not fade.
_FACT = DecayPolicy(half_life=None, expire_after=None)
DEFAULT_POLICIES: dict[str, DecayPolicy] = {
    "first_seen": _FACT,
    "last_seen": _FACT,
    "order_count": _FACT,
    "revenue": _FACT,
    "average_order_value": _FACT,
    "return_count": _FACT,
    "currency": _FACT,
    "favourite_categories": DecayPolicy(180 * DAY, 730 * DAY),
    "favourite_colours": DecayPolicy(180 * DAY, 730 * DAY),
    "favourite_sizes": DecayPolicy(365 * DAY, 3 * 365 * DAY),
    "last_viewed_items": DecayPolicy(30 * DAY, 120 * DAY),
    "last_carted_items": DecayPolicy(14 * DAY, 60 * DAY),
    "language": DecayPolicy(365 * DAY, 3 * 365 * DAY),
    "country": DecayPolicy(365 * DAY, 3 * 365 * DAY),
}
DEFAULT_OBSERVED = DecayPolicy(365 * DAY, 3 * 365 * DAY)
DEFAULT_INFERRED = DecayPolicy(90 * DAY, 365 * DAY)


def policy_for(
    key: str, source: Source, policies: Mapping[str, DecayPolicy] = DEFAULT_POLICIES
) -> DecayPolicy:
    if source == "stated":
        return _FACT
    if key in policies:
        return policies[key]
    return DEFAULT_INFERRED if source == "inferred" else DEFAULT_OBSERVED


def weight_of(record: TraitRecord, as_of: datetime, policy: DecayPolicy) -> float:
    """How much the evidence still counts, 0..1: confidence x 0.5^(age / half-life)."""
    base = 1.0 if record.confidence is None else max(0.0, min(1.0, record.confidence))
    if record.source == "stated" or policy.half_life is None:
        return base
    age = max(as_of - record.updated_at, timedelta(0))
    return base * float(0.5 ** (age / policy.half_life))


def is_expired(record: TraitRecord, as_of: datetime, policy: DecayPolicy) -> bool:
    return policy.expire_after is not None and as_of - record.updated_at > policy.expire_after


def fresh_since(
    key: str, source: Source, as_of: datetime, policies: Mapping[str, DecayPolicy] = DEFAULT_POLICIES
) -> datetime | None:
    """The oldest `updated_at` a record of `key` from `source` may have and not be expired as of `as_of`
    (`is_expired` as a bound a query can use); None: such records never expire."""
    expire_after = policy_for(key, source, policies).expire_after
    return None if expire_after is None else as_of - expire_after


def rank_of(source: str) -> int:
    """A source's strength in `resolve`: 0 for stated, the strongest."""
    return _RANK[source]


def resolve(
    records: Iterable[TraitRecord],
    as_of: datetime,
    policies: Mapping[str, DecayPolicy] = DEFAULT_POLICIES,
) -> dict[str, ResolvedTrait]:
    """Each trait's winning value as of `as_of`: the strongest source that has not expired.

    Within one source the newest record wins. Expired records never win, whatever their source.
    """
    by_key: dict[str, list[TraitRecord]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    resolved: dict[str, ResolvedTrait] = {}
    for key, candidates in by_key.items():
        candidates.sort(key=lambda r: (_RANK[r.source], -r.updated_at.timestamp()))
        winner: TraitRecord | None = None
        considered: list[Considered] = []
        for record in candidates:
            policy = policy_for(key, record.source, policies)
            weight = weight_of(record, as_of, policy)
            if is_expired(record, as_of, policy):
                considered.append(Considered(record, "expired", 0.0))
            elif winner is None:
                winner = record
            else:
                considered.append(Considered(record, "outranked", weight))
        if winner is None:
            continue
        policy = policy_for(key, winner.source, policies)
        confirmed = winner.confirmed_at or winner.updated_at
        resolved[key] = ResolvedTrait(
            record=winner,
            weight=weight_of(winner, as_of, policy),
            age=max(as_of - winner.updated_at, timedelta(0)),
            expires_at=None if policy.expire_after is None else winner.updated_at + policy.expire_after,
            needs_confirmation=winner.source == "stated" and as_of - confirmed > RECONFIRM_AFTER,
            considered=tuple(considered),
        )
    return resolved


def expired_traits(
    records: Iterable[TraitRecord],
    as_of: datetime,
    policies: Mapping[str, DecayPolicy] = DEFAULT_POLICIES,
) -> dict[str, list[TraitRecord]]:
    """The traits `resolve` leaves out because every value has expired, each with its values (strongest
    source first, then newest): what explain shows so that a person can see why a trait is gone."""
    records = list(records)
    won = resolve(records, as_of, policies)
    gone: dict[str, list[TraitRecord]] = {}
    for record in records:
        if record.key not in won:
            gone.setdefault(record.key, []).append(record)
    for candidates in gone.values():
        candidates.sort(key=lambda r: (_RANK[r.source], -r.updated_at.timestamp()))
    return gone


def within_category(category: str, parent: str) -> bool:
    """Whether a category path is `parent` or under it ("Bags > Jumbo bags" is within "Bags"), without
    regard to case: the one test of "in a category" that stated likes and dislikes are read with."""
    category, parent = category.strip().lower(), parent.strip().lower()
    return bool(parent) and (category == parent or category.startswith(parent + " > "))
