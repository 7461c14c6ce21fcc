""" "That's not me": a person rejects a guess, and it is never guessed again from the same evidence.

A rejection names a trait and, optionally, a value: the whole guessed value, or one element of a list
(`favourite_categories: "Mugs"`). It keeps the message ids the guess rested on. When traits are rebuilt, a
guess (`inferred`) is dropped if it repeats a rejected value, or if it rests only on evidence that was
rejected; a rejected element is taken out of a list. What the person states is never filtered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput
from shopkeeper.store.traits import SqlTraits, TraitRecord

_ANY = object()


@dataclass(frozen=True, slots=True)
class Rejection:
    key: str
    value: Any  # _ANY: the whole trait, whatever its value
    evidence: frozenset[str]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": None if self.value is _ANY else self.value,
            "evidence": sorted(self.evidence),
            "at": self.at.isoformat(),
        }


def reject(
    conn: Connection, person_id: int, guess: TraitRecord | None, key: str, value: Any = None
) -> Rejection:
    """Record that the person rejects `guess` (the current inferred record for `key`), inside the caller's
    write transaction, and mark them for a rebuild so that the guess disappears at once."""
    if guess is None or guess.source != "inferred":
        raise InvalidInput(
            f"there is no guess for {key!r} to reject: only what we guessed (inferred) can be rejected; "
            "to change what you told us, update your preferences",
            field="key",
        )
    if value is not None:
        within = guess.value if isinstance(guess.value, list) else [guess.value]
        if value not in within and value != guess.value:
            raise InvalidInput(f"{value!r} is not part of the guess for {key!r}", field="value")
    events = guess.evidence.get("events", []) if isinstance(guess.evidence, Mapping) else []
    now = datetime.now(UTC)
    SqlTraits.add_rejection(conn, person_id, key, value, [str(e) for e in events], now)
    return Rejection(key, _ANY if value is None else value, frozenset(map(str, events)), now)


def load(conn: Connection, person_ids: Sequence[int]) -> dict[int, list[Rejection]]:
    """These people's rejections, including those made before a merge by someone merged into them."""
    found: dict[int, list[Rejection]] = {}
    for r in SqlTraits.rejections(conn, person_ids):
        value = _ANY if r.value is None else orjson.loads(r.value)
        found.setdefault(r.owner, []).append(
            Rejection(r.key, value, frozenset(orjson.loads(r.evidence)), r.at)
        )
    return found


def apply(records: Sequence[TraitRecord], rejections: Sequence[Rejection]) -> list[TraitRecord]:
    """These records less the guesses the person rejected."""
    if not rejections:
        return list(records)
    kept = []
    for record in records:
        survivor: TraitRecord | None = record
        for rejection in rejections:
            if survivor is None:
                break
            if record.source == "inferred" and rejection.key == record.key:
                survivor = _without(survivor, rejection)
        if survivor is not None:
            kept.append(survivor)
    return kept


def _without(record: TraitRecord, rejection: Rejection) -> TraitRecord | None:
    events = record.evidence.get("events", []) if isinstance(record.evidence, Mapping) else []
    same_evidence = bool(events) and set(map(str, events)) <= rejection.evidence
    if rejection.value is _ANY:
        return None if same_evidence or not events else record
    if record.value == rejection.value:
        return None
    if isinstance(record.value, list) and rejection.value in record.value:
        rest = [v for v in record.value if v != rejection.value]
        return replace(record, value=rest) if rest else None
    return record
