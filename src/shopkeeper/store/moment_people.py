"""What the moment engine reads of many people at once: their ids, traits, consent, newest time zone and
recent contacts, a few queries for a whole batch instead of a dozen per person (a restock can wake
thousands of wishes in one step)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from shopkeeper.store.outbox import LIVE, outbox_row
from shopkeeper.store.schema import consents, events, identities, outbox, people, traits
from shopkeeper.store.traits import TraitRecord, to_record

CHUNK = 500


@dataclass
class PersonRows:
    """One person as stored: their own external ids (oldest first), the first userId and anonymousId of
    theirs or of anyone merged into them (`unit_ids`), their trait rows, and their newest consent choice
    per purpose (theirs or merged, the newest entry wins)."""

    external: list[tuple[str, str]] = field(default_factory=list)
    unit_ids: dict[str, str] = field(default_factory=dict)
    traits: list[TraitRecord] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=dict)


def _chunks(values: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def people_rows(
    conn: Connection, person_ids: Iterable[int], purposes: Sequence[str], trait_keys: Sequence[str]
) -> dict[int, PersonRows]:
    """`PersonRows` of these people (of their traits, those of `trait_keys`), in a few queries per 500
    people; a person with no ids left (erased) is left out."""
    owner: dict[int, int] = {}  # a person, or one merged into them -> the person
    for chunk in _chunks(person_ids):
        owner.update({p: p for p in chunk})
        for merged, into in conn.execute(
            select(people.c.person_id, people.c.merged_into).where(people.c.merged_into.in_(chunk))
        ):
            owner.setdefault(int(merged), int(into))
    found: dict[int, PersonRows] = {}
    first: dict[tuple[int, str], int] = {}  # (person, kind) -> the id of their first identity of it
    newest: dict[tuple[int, str], tuple[int, bool]] = {}  # (person, purpose) -> the newest entry
    for chunk in _chunks(owner):
        rows = conn.execute(
            select(identities.c.person_id, identities.c.kind, identities.c.value, identities.c.id)
            .where(identities.c.person_id.in_(chunk))
            .order_by(identities.c.id)
        )
        for person_id, kind, value, identity in rows:
            mine = found.setdefault(owner[int(person_id)], PersonRows())
            if int(person_id) == owner[int(person_id)]:
                mine.external.append((kind, value))
            key = (owner[int(person_id)], kind)
            if kind in ("user_id", "anonymous_id") and (key not in first or int(identity) < first[key]):
                first[key] = int(identity)
                mine.unit_ids[kind] = value
        for person_id, purpose, granted, entry in conn.execute(
            select(consents.c.person_id, consents.c.purpose, consents.c.granted, consents.c.id).where(
                consents.c.person_id.in_(chunk), consents.c.purpose.in_(list(purposes))
            )
        ):
            choice = (owner[int(person_id)], purpose)
            if choice not in newest or int(entry) > newest[choice][0]:
                newest[choice] = (int(entry), bool(granted))
    for (person_id, purpose), (_, granted) in newest.items():
        found.setdefault(person_id, PersonRows()).consent[purpose] = granted
    for chunk in _chunks(found):
        wanted = select(traits).where(traits.c.person_id.in_(chunk), traits.c.key.in_(list(trait_keys)))
        for row in conn.execute(wanted):
            found[int(row.person_id)].traits.append(to_record(row))
    return {p: rows for p, rows in found.items() if rows.external}


def newest_timezones(conn: Connection, person_ids: Iterable[int]) -> dict[int, str]:
    """The time zone each person's newest event carried (`context.timezone`), where it carried one."""
    found: dict[int, str] = {}
    for chunk in _chunks(person_ids):
        newest = (
            select(func.max(events.c.id)).where(events.c.person_id.in_(chunk)).group_by(events.c.person_id)
        )
        for person_id, payload in conn.execute(
            select(events.c.person_id, events.c.payload).where(events.c.id.in_(newest))
        ):
            context = orjson.loads(payload).get("context")
            zone = context.get("timezone") if isinstance(context, dict) else None
            if isinstance(zone, str):
                found[int(person_id)] = zone
    return found


def recent_contacts(
    conn: Connection, person_ids: Iterable[int], since: datetime
) -> dict[int, list[tuple[datetime, str, int]]]:
    """Each person's live, non-transactional messages made since `since`: (time, channel, outbox id)."""
    found: dict[int, list[tuple[datetime, str, int]]] = {}
    for chunk in _chunks(person_ids):
        rows = conn.execute(
            select(outbox.c.person_id, outbox.c.created_at, outbox.c.channel, outbox.c.id).where(
                outbox.c.person_id.in_(chunk),
                outbox.c.status.in_(LIVE),
                outbox.c.transactional == 0,
                outbox.c.created_at >= since,
            )
        )
        for person_id, at, channel, outbox_id in rows:
            found.setdefault(int(person_id), []).append((at, channel, int(outbox_id)))
    return found


def existing(conn: Connection, dedupes: Iterable[str]) -> set[str]:
    """Which of these dedupe keys the outbox holds already."""
    keys = sorted({d[:255] for d in dedupes})
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found |= set(
            conn.scalars(select(outbox.c.dedupe).where(outbox.c.dedupe.in_(keys[start : start + CHUNK])))
        )
    return found


def add_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert outbox rows whose dedupe keys are new (the caller checked, under the write lock) in one
    statement per 500; their ids by dedupe key."""
    if not rows:
        return {}
    prepared = [outbox_row(row) for row in rows]
    inserted = conn.execute(
        outbox.insert().returning(outbox.c.dedupe, outbox.c.id, sort_by_parameter_order=True), prepared
    )
    return {dedupe: int(outbox_id) for dedupe, outbox_id in inserted}
