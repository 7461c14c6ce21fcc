"""The dashboard's reads of people: finding someone by an id or email (whole, or its first characters), who
a staff member serves, and a person's newest events and decisions.

Every search is a range read of the (kind, value) unique index on `identities`, limited, so it costs the
same on a shop of 100 people as on one of 100,000. Emails are kept lower-cased (ingestion does that), so an
email is matched in lower case. A prefix match compares code points, which is SQLite's order and that of a
PostgreSQL database created with the C or C.UTF-8 collation; under another collation a prefix match can
miss an id whose next character sorts differently, but never shows one that does not start with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, or_, select

from shopkeeper.store.schema import (
    consents,
    decisions,
    events,
    identities,
    outbox,
    people,
    tasks,
    trait_rejections,
    traits,
    wishes,
)

# The order a search tries the kinds in, with how each is compared (emails are stored lower-cased).
SEARCH_KINDS = ("user_id", "email", "anonymous_id")
PERSON_NUMBER = re.compile(r"#(\d{1,18})")
LONGEST_ID = 255  # the identities column: nothing longer is stored
TOP = "\U0010ffff"  # the last code point: every string that starts with p sorts below p + TOP
SERVING = ("open", "snoozed")  # a staff task anyone on the floor may pick up


@dataclass(frozen=True, slots=True)
class Match:
    """A person a search found, by the id (or `#number`) that matched and whether it matched whole."""

    person_id: int
    kind: str  # user_id | email | anonymous_id | number
    value: str
    exact: bool


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One of a person's events, with its message (the page picks the few fields it shows)."""

    id: int
    type: str
    event: str | None
    timestamp: datetime
    payload: dict[str, Any]


def _top_person() -> Any:
    """The person a row's person id now is: itself, or whoever it was merged into."""
    return func.coalesce(people.c.merged_into, people.c.person_id)


class SqlPeopleDirectory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- finding people -------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 20) -> list[Match]:
        """People whose user id, email or anonymous id is `text` or starts with it (an email in any case),
        or whose person number is `text` written `#123`: whole matches first, then by the id, at most
        `limit` people."""
        text = text.strip()
        if not text or len(text) > LONGEST_ID or "\x00" in text:
            return []
        found: list[Match] = []
        with self._engine.connect() as conn:
            number = PERSON_NUMBER.fullmatch(text)
            if number is not None:
                person_id = self.live(int(number.group(1)), conn)
                if person_id is not None:
                    found.append(Match(person_id, "number", f"#{person_id}", True))
            for kind in SEARCH_KINDS:
                needle = text.lower() if kind == "email" else text
                query = (
                    select(identities.c.person_id, identities.c.value)
                    .where(
                        identities.c.kind == kind,
                        identities.c.value >= needle,
                        identities.c.value < needle + TOP,
                    )
                    .order_by(identities.c.value)
                    .limit(limit)
                )
                found += [
                    Match(int(person_id), kind, value, value == needle)
                    for person_id, value in conn.execute(query)
                    if value.startswith(needle)  # a collation other than C could order others in
                ]
        rank = {kind: n for n, kind in enumerate(("number", *SEARCH_KINDS))}
        best: dict[int, Match] = {}
        for match in sorted(found, key=lambda m: (not m.exact, rank[m.kind], m.value)):
            best.setdefault(match.person_id, match)
        return list(best.values())[:limit]

    def live(self, person_id: int, conn: Connection | None = None) -> int | None:
        """`person_id` if that person exists and was not merged into someone else, else None."""
        query = select(people.c.person_id).where(
            people.c.person_id == person_id, people.c.merged_into.is_(None)
        )
        if conn is not None:
            found = conn.scalar(query)
        else:
            with self._engine.connect() as own:
                found = own.scalar(query)
        return None if found is None else int(found)

    def ids_of(self, person_ids: Sequence[int], *, per_person: int = 6) -> dict[int, list[tuple[str, str]]]:
        """Each person's first few ids as (kind, value), user ids first, then emails, then anonymous ids."""
        rank = {kind: n for n, kind in enumerate(SEARCH_KINDS)}
        found: dict[int, list[tuple[str, str]]] = {p: [] for p in person_ids}
        if not person_ids:
            return found
        query = (
            select(identities.c.person_id, identities.c.kind, identities.c.value)
            .where(identities.c.person_id.in_(list(person_ids)))
            .order_by(identities.c.id)
        )
        with self._engine.connect() as conn:
            for person_id, kind, value in conn.execute(query):
                found[int(person_id)].append((kind, value))
        return {
            p: sorted(ids, key=lambda kv: rank.get(kv[0], len(rank)))[:per_person] for p, ids in found.items()
        }

    # ---- whom staff serve --------------------------------------------------------------------------

    def served(self, person_ids: Sequence[int], staff_email: str) -> set[int]:
        """Those of these people (or anyone merged into them) with a staff task that is open or snoozed,
        or that `staff_email` holds (claimed, or done by them)."""
        if not person_ids:
            return set()
        wanted = list(person_ids)
        query = (
            select(_top_person())
            .select_from(tasks.join(people, people.c.person_id == tasks.c.person_id))
            .where(
                or_(people.c.person_id.in_(wanted), people.c.merged_into.in_(wanted)),
                or_(tasks.c.status.in_(SERVING), tasks.c.assignee == staff_email),
            )
            .distinct()
        )
        with self._engine.connect() as conn:
            return {int(p) for p in conn.scalars(query)}

    def served_by(self, staff_email: str, *, limit: int = 50) -> list[int]:
        """The people a staff member serves (see `served`), soonest task first."""
        top = _top_person()
        query = (
            select(top)
            .select_from(tasks.join(people, people.c.person_id == tasks.c.person_id))
            .where(or_(tasks.c.status.in_(SERVING), tasks.c.assignee == staff_email))
            .group_by(top)
            .order_by(func.min(tasks.c.due_at), top)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [int(p) for p in conn.scalars(query)]

    # ---- a person's newest ------------------------------------------------------------------------

    def newest_events(self, person_ids: Sequence[int], *, limit: int = 50) -> list[LoggedEvent]:
        """These people's newest events, newest first."""
        query = (
            select(events.c.id, events.c.type, events.c.event, events.c.timestamp, events.c.payload)
            .where(events.c.person_id.in_(list(person_ids)))
            .order_by(events.c.timestamp.desc(), events.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                LoggedEvent(int(r.id), r.type, r.event, r.timestamp, orjson.loads(r.payload))
                for r in conn.execute(query)
            ]

    def newest_decisions(
        self, person_ids: Sequence[int], *, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many decisions were made for these people, and the newest `limit` of them, newest first:
        placement, time, cohort, experiment and arm, the items with their reasons, and the reasons.
        (By person: what was decided for an id before anyone knew whose it was is in the export.)"""
        wanted = list(person_ids)
        query = (
            select(decisions)
            .where(decisions.c.person_id.in_(wanted))
            .order_by(decisions.c.at.desc(), decisions.c.decision_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            total = conn.scalar(select(func.count()).where(decisions.c.person_id.in_(wanted))) or 0
            rows = [
                {
                    "decision_id": r.decision_id,
                    "placement": r.placement,
                    "at": r.at,
                    "personalized": bool(r.personalized),
                    "cohort": r.cohort,
                    "experiment": r.experiment,
                    "arm": r.arm,
                    "model_version": r.model_version,
                    "items": orjson.loads(r.items),
                    "reasons": orjson.loads(r.reasons),
                }
                for r in conn.execute(query)
            ]
        return int(total), rows

    def footprint(self, person_ids: Sequence[int], external: Sequence[str]) -> dict[str, int]:
        """How many rows of each kind an erasure of these people would delete (decisions also by the
        external ids, as the erasure does)."""
        wanted = list(person_ids)
        shown: Any = decisions.c.person_id.in_(wanted)
        if external:
            shown = or_(shown, decisions.c.external_id.in_(list(external)))
        counted = {
            "events": select(func.count()).where(events.c.person_id.in_(wanted)),
            "traits": select(func.count()).where(traits.c.person_id.in_(wanted)),
            "decisions": select(func.count()).where(shown),
            "consents": select(func.count()).where(consents.c.person_id.in_(wanted)),
            "rejected_guesses": select(func.count()).where(trait_rejections.c.person_id.in_(wanted)),
            "wishes": select(func.count()).where(wishes.c.person_id.in_(wanted)),
            "messages": select(func.count()).where(outbox.c.person_id.in_(wanted)),
            "tasks": select(func.count()).where(tasks.c.person_id.in_(wanted)),
            "identities": select(func.count()).where(identities.c.person_id.in_(wanted)),
        }
        with self._engine.connect() as conn:
            return {name: int(conn.scalar(query) or 0) for name, query in counted.items()}
