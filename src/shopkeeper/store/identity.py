"""The identity graph: which external ids belong to which person, and every stitching decision.

Rules (see docs/people.md, "Identity"):
- a message carrying both `userId` and `anonymousId` stitches the anonymous id to the user;
- an anonymous-only person is merged into a known one when their ids meet;
- two people who each have a known `userId` are never merged implicitly (the shared-device problem);
  the refusal is recorded instead. Only an explicit `alias` from the shop's own (trusted) code merges two
  known users. A message sent with a write key is not trusted, because a write key is public: its `alias`
  may give an anonymous person a userId, or fold an anonymous person into a known one, but never gives a
  known person a second userId nor merges two known people. Those refusals are recorded too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    Connection,
    Dialect,
    Engine,
    Select,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from shopkeeper.store.bulk import BulkInsert, any_of
from shopkeeper.store.schema import events, identities, interactions, merges, people
from shopkeeper.store.traits import forget_person, mark_dirty

IdentityKind = Literal["user_id", "anonymous_id", "email"]


class LinkedPerson(str):
    """The person a verified link token was issued for, passed wherever a person's id goes.

    It is a `str` (it reads `link:<person id>`), so every service that takes an id takes it, but
    `SqlIdentityGraph.find_person` answers it by the internal person id and the generation the link was
    issued at, never by an external id that an `alias` could move to someone else. A person merged away,
    erased, or re-created under the same userId has another generation (or none), and is not found.
    """

    person_id: int
    generation: int

    def __new__(cls, person_id: int, generation: int) -> LinkedPerson:
        linked = super().__new__(cls, f"link:{person_id}")
        linked.person_id = person_id
        linked.generation = generation
        return linked


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class Merge:
    """One stitching decision. `outcome` is `merged`, or `refused` when both sides were known users."""

    id: int
    from_person_id: int
    into_person_id: int
    outcome: Literal["merged", "refused"]
    reason: str
    message_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """What is known about one person: ids, merges, event counts and when they were last seen."""

    person_id: int
    identities: list[Identity]
    merges: list[Merge]
    event_count: int
    event_counts: dict[str, int]
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "person_id": self.person_id,
            "ids": [
                {"kind": i.kind, "value": i.value, "linked_at": i.linked_at.isoformat()}
                for i in self.identities
            ],
            "merges": [merge_to_json(m) for m in self.merges],
            "event_count": self.event_count,
            "event_counts": self.event_counts,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "created_at": self.created_at.isoformat(),
        }


def merge_to_json(m: Merge) -> dict[str, object]:
    return {
        "id": m.id,
        "from_person_id": m.from_person_id,
        "into_person_id": m.into_person_id,
        "outcome": m.outcome,
        "reason": m.reason,
        "message_id": m.message_id,
        "at": m.at.isoformat(),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_SHARED_DEVICE = "anonymousId already belongs to another known user (shared device?)"
_UNTRUSTED_ALIAS = "a write key may not alias one known userId to another"
# Not secret (a link is signed), only unlikely to repeat: a plain generator, seeded from the OS, is cheaper
# per new person than the OS's own randomness.
_GENERATIONS = random.Random()
LOOKUP_ORDER: tuple[IdentityKind, ...] = ("user_id", "email", "anonymous_id")


def _preload_sql(dialect: Dialect) -> str:
    """The people behind a batch's ids, and whether each has a user_id, in one query of fixed text.

    Each kind is matched with its values, so that the (kind, value) unique index answers: `value IN
    (...)` alone would scan the whole table on both backends. The values come as one array parameter
    per kind (`any_of`), so the text never changes and is never compiled again.
    """
    table = dialect.identifier_preparer.format_table(identities)
    condition = any_of(dialect, [])[0]
    wanted = " OR ".join(f"(i.kind = '{kind}' AND i.value {condition})" for kind in LOOKUP_ORDER)
    return (
        f"SELECT i.kind, i.value, i.person_id, EXISTS (SELECT 1 FROM {table} u "
        f"WHERE u.person_id = i.person_id AND u.kind = 'user_id') AS known "
        f"FROM {table} i WHERE {wanted}"
    )


# Built once: a resolver runs these per message, and building a statement costs more than running it.
_PRELOAD: dict[str, str] = {}  # dialect name -> SQL
_LOOKUP = select(identities.c.person_id).where(
    identities.c.kind == bindparam("kind"), identities.c.value == bindparam("value")
)
_KNOWN = (
    select(identities.c.person_id)
    .where(identities.c.kind == "user_id", identities.c.person_id.in_(bindparam("people", expanding=True)))
    .distinct()
)
_REFUSED = select(merges.c.id).where(
    merges.c.from_person_id == bindparam("source"),
    merges.c.into_person_id == bindparam("target"),
    merges.c.outcome == "refused",
)
_INSERT_PEOPLE = BulkInsert(people, ("person_id", "created_at", "generation"))
_INSERT_IDENTITIES = BulkInsert(identities, ("kind", "value", "person_id", "created_at", "message_id"))
_INSERT_MERGE = insert(merges)
_NEWEST_PERSON = select(func.max(people.c.person_id))
# Ids for new people, taken from the sequence behind `people.person_id` in one round trip.
_NEXT_PEOPLE = text(
    "SELECT nextval(pg_get_serial_sequence('people', 'person_id')) FROM generate_series(1, :n)"
)


class IdentityResolver:
    """Resolves the messages of one write transaction to person ids, linking and merging as it goes.

    It caches what it has read or written, so a batch of messages costs one lookup query. It also
    remembers the ids it found missing: nothing else writes identities while the write transaction holds
    the store's write lock, so a missing id can only appear through this resolver's own `_link`.

    New people and their ids are written together by `flush` (two statements for any number of them);
    their person ids are reserved up front, so nothing needs renaming afterwards. A merge flushes first,
    because it updates rows in the database.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._person_of: dict[tuple[str, str], int] = {}
        self._absent: set[tuple[str, str]] = set()
        self._known: dict[int, bool] = {}  # person_id -> has a user_id
        self._refused: set[tuple[int, int]] = set()
        self.merged: dict[int, int] = {}  # from -> into, within this transaction
        self._free_ids: list[int] = []  # reserved for new people, unused yet (popped from the end)
        self._next_sqlite_id: int | None = None
        self._created: set[int] = set()  # people made in this transaction
        self._new_people: list[tuple[int, datetime, int]] = []  # rows waiting for `flush`
        self._new_links: list[tuple[str, str, int, datetime, str]] = []
        self._new_refusals: list[dict[str, Any]] = []

    @property
    def created(self) -> frozenset[int]:
        """The people this resolver made (some may have been merged away since)."""
        return frozenset(self._created)

    def preload(self, keys: set[tuple[IdentityKind, str]]) -> None:
        """Read the people behind these ids, and whether each has a user_id, in one query."""
        if not keys:
            return
        values: dict[str, list[str]] = {kind: [] for kind in LOOKUP_ORDER}
        for kind, value in keys:
            values[kind].append(value)
        dialect = self._conn.dialect
        sql = _PRELOAD.get(dialect.name) or _PRELOAD.setdefault(dialect.name, _preload_sql(dialect))
        params = tuple(any_of(dialect, values[kind])[1] for kind in LOOKUP_ORDER)
        for kind, value, person_id, known in self._conn.exec_driver_sql(sql, params).fetchall():
            self._person_of[(kind, value)] = person_id
            self._known.setdefault(person_id, bool(known))
        self._absent.update(key for key in keys if key not in self._person_of)

    def _load_known(self, person_ids: set[int]) -> None:
        missing = person_ids - self._known.keys()
        if not missing:
            return
        known = set(self._conn.scalars(_KNOWN, {"people": list(missing)}))
        for person_id in missing:
            self._known[person_id] = person_id in known

    def _lookup(self, kind: IdentityKind, value: str) -> int | None:
        key = (kind, value)
        if key in self._absent:
            return None
        if key not in self._person_of:
            person_id = self._conn.scalar(_LOOKUP, {"kind": kind, "value": value})
            if person_id is None:
                self._absent.add(key)
                return None
            self._person_of[key] = person_id
            self._load_known({person_id})
        return self._person_of[key]

    def _reserve_id(self) -> int:
        """A person id for someone new. Every new person takes an id that was missing when asked, so
        reserving one per missing id on PostgreSQL's sequence seldom needs a second round trip."""
        if self._conn.dialect.name != "postgresql":
            # SQLite gives a new row max(rowid) + 1; the write lock keeps anyone else from inserting.
            if self._next_sqlite_id is None:
                self._next_sqlite_id = int(self._conn.scalar(_NEWEST_PERSON) or 0) + 1
            person_id = self._next_sqlite_id
            self._next_sqlite_id += 1
            return person_id
        if not self._free_ids:
            wanted = max(1, sum(1 for kind, _ in self._absent if kind != "email"))
            self._free_ids = [int(i) for i in self._conn.scalars(_NEXT_PEOPLE, {"n": wanted})][::-1]
        return self._free_ids.pop()

    def _new_person(self) -> int:
        person_id = self._reserve_id()
        self._new_people.append((person_id, self._now, new_generation()))
        self._created.add(person_id)
        self._known[person_id] = False
        return person_id

    def _link(self, kind: IdentityKind, value: str, person_id: int, message_id: str) -> None:
        self._new_links.append((kind, value, person_id, self._now, message_id))
        self._person_of[(kind, value)] = person_id
        self._absent.discard((kind, value))
        if kind == "user_id":
            self._known[person_id] = True

    def flush(self) -> None:
        """Write the new people, then their ids, then the refusals: one executemany each."""
        conn = self._conn
        if self._new_people:
            _INSERT_PEOPLE.execute(conn, self._new_people)
            self._new_people = []
        if self._new_links:
            _INSERT_IDENTITIES.execute(conn, self._new_links)
            self._new_links = []
        if self._new_refusals:
            conn.execute(_INSERT_MERGE, self._new_refusals)
            self._new_refusals = []

    def _merge(self, source: int, target: int, reason: str, message_id: str) -> None:
        self.flush()  # the updates below must see this transaction's people and ids
        conn = self._conn
        conn.execute(update(identities).where(identities.c.person_id == source).values(person_id=target))
        conn.execute(update(events).where(events.c.person_id == source).values(person_id=target))
        # What they did as the merged person is theirs too: decide and training read interactions.
        conn.execute(update(interactions).where(interactions.c.person_id == source).values(person_id=target))
        # The source, and whoever had been merged into it, now point at the target.
        conn.execute(
            update(people)
            .where(or_(people.c.person_id == source, people.c.merged_into == source))
            .values(merged_into=target, generation=new_generation())
        )
        if self._known.get(source, False) and self._known.get(target, False):
            # Two known people became one: a link to either no longer names whom it was issued for.
            conn.execute(
                update(people).where(people.c.person_id == target).values(generation=new_generation())
            )
        conn.execute(_INSERT_MERGE, self._merge_row(source, target, "merged", reason, message_id))
        forget_person(conn, source)
        mark_dirty(conn, [target])
        for key, person_id in self._person_of.items():
            if person_id == source:
                self._person_of[key] = target
        self._known[target] = self._known.get(target, False) or self._known.get(source, False)
        for earlier, into in self.merged.items():
            if into == source:
                self.merged[earlier] = target
        self.merged[source] = target

    def _refuse(self, source: int, target: int, reason: str, message_id: str) -> None:
        if (source, target) in self._refused:
            return
        self._refused.add((source, target))
        # Someone made in this transaction cannot have been refused before.
        new = source in self._created or target in self._created
        if new or self._conn.scalar(_REFUSED, {"source": source, "target": target}) is None:
            self._new_refusals.append(self._merge_row(source, target, "refused", reason, message_id))

    def _merge_row(
        self, source: int, target: int, outcome: str, reason: str, message_id: str
    ) -> dict[str, Any]:
        return {
            "from_person_id": source,
            "into_person_id": target,
            "outcome": outcome,
            "reason": reason,
            "message_id": message_id,
            "at": self._now,
        }

    def resolve(self, user_id: str | None, anonymous_id: str | None, message_id: str) -> int:
        """The person a message with these ids belongs to, stitching the ids when it may."""
        if user_id is None:
            assert anonymous_id is not None
            person = self._lookup("anonymous_id", anonymous_id)
            if person is None:
                person = self._new_person()
                self._link("anonymous_id", anonymous_id, person, message_id)
            return person
        user_person = self._lookup("user_id", user_id)
        anon_person = self._lookup("anonymous_id", anonymous_id) if anonymous_id is not None else None
        if user_person is None:
            if anon_person is not None and not self._known[anon_person]:
                self._link("user_id", user_id, anon_person, message_id)
                return anon_person
            user_person = self._new_person()
            self._link("user_id", user_id, user_person, message_id)
            if anonymous_id is not None and anon_person is None:
                self._link("anonymous_id", anonymous_id, user_person, message_id)
            elif anon_person is not None:
                self._refuse(anon_person, user_person, _SHARED_DEVICE, message_id)
            return user_person
        if anonymous_id is None:
            return user_person
        if anon_person is None:
            self._link("anonymous_id", anonymous_id, user_person, message_id)
        elif anon_person != user_person:
            if self._known[anon_person]:
                self._refuse(anon_person, user_person, _SHARED_DEVICE, message_id)
            else:
                self._merge(anon_person, user_person, "anonymousId met userId", message_id)
        return user_person

    def alias(self, previous_id: str, user_id: str, message_id: str, *, trusted: bool = True) -> int:
        """An explicit `alias`: `previous_id` (a user or anonymous id) is the same person as `user_id`.

        From trusted code this is the one way two known users can be merged, because the shop said so.
        Untrusted (a write key's message), a known person keeps their userId alone: the alias is refused
        and recorded, and the message belongs to the person of `user_id`.
        """
        previous = self._lookup("user_id", previous_id) or self._lookup("anonymous_id", previous_id)
        current = self._lookup("user_id", user_id)
        if not trusted and previous is not None and previous != current and self._known[previous]:
            if current is None:
                current = self._new_person()
                self._link("user_id", user_id, current, message_id)
            self._refuse(previous, current, _UNTRUSTED_ALIAS, message_id)
            return current
        if previous is None and current is None:
            current = self._new_person()
            self._link("user_id", user_id, current, message_id)
            self._link("anonymous_id", previous_id, current, message_id)
        elif previous is None:
            assert current is not None
            self._link("anonymous_id", previous_id, current, message_id)
        elif current is None:
            current = previous
            self._link("user_id", user_id, current, message_id)
        elif previous != current:
            self._merge(previous, current, "alias", message_id)
        return current

    def link_email(self, email: str, person_id: int, message_id: str) -> None:
        """Remember an email as a lookup id. Emails never merge people: they are shared and recycled."""
        if self._lookup("email", email) is None:
            self._link("email", email, person_id, message_id)

    def final_person(self, person_id: int) -> int:
        """The person a resolved id ended up as, after this transaction's merges. Flushes first."""
        if self._new_people or self._new_links or self._new_refusals:
            self.flush()
        return self.merged.get(person_id, person_id)


def new_generation() -> int:
    """A person's generation: random, so that a person id SQLite gives again never matches an old link."""
    return _GENERATIONS.getrandbits(62) + 1


# find_person, built once. Naming the kinds lets the (kind, value) unique index answer; `value = ?`
# alone scans the whole table.
def person_and_merged(person: int | BindParameter[Any]) -> Select[tuple[int]]:
    """The person and everyone merged into them: what one of them did or chose (a cookie banner
    answered while anonymous, say) is the person's."""
    return select(people.c.person_id).where(or_(people.c.person_id == person, people.c.merged_into == person))


_FIND_PERSON = select(identities.c.kind, identities.c.person_id).where(
    identities.c.kind.in_(LOOKUP_ORDER), identities.c.value == bindparam("value")
)
_LINKED_PERSON = select(people.c.person_id).where(
    people.c.person_id == bindparam("person"),
    people.c.generation == bindparam("generation"),
    people.c.merged_into.is_(None),
)
_GENERATION = select(people.c.generation).where(
    people.c.person_id == bindparam("person"), people.c.merged_into.is_(None)
)
# The experiment unit's candidates, built once: decide reads them per call. The kinds are picked in
# Python (`unit_ids`): with `kind IN (...)` in the query, SQLite's planner walks the (kind, value) index,
# every user_id in the shop, instead of the person's few rows (5 ms a call at 20,000 people).
_UNIT_KINDS = ("user_id", "anonymous_id")
_UNIT_IDS = (
    select(identities.c.kind, identities.c.value)
    .where(identities.c.person_id.in_(person_and_merged(bindparam("person"))))
    .order_by(identities.c.id)
)


class SqlIdentityGraph:
    """Read side of the identity graph."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find_person(self, external_id: str, conn: Connection | None = None) -> int | None:
        """The person known by this id: a userId first, then an email, then an anonymousId. A
        `LinkedPerson` (from a verified link) is found by person id, and only at its generation."""
        if isinstance(external_id, LinkedPerson):
            with _reader(self._engine, conn) as c:
                found = c.scalar(
                    _LINKED_PERSON, {"person": external_id.person_id, "generation": external_id.generation}
                )
            return None if found is None else int(found)
        if "\x00" in external_id or len(external_id) > 255:
            return None  # no stored id can look like this (and PostgreSQL text cannot hold NUL)
        with _reader(self._engine, conn) as c:
            rows = dict(c.execute(_FIND_PERSON, {"value": external_id}).all())
        for kind in LOOKUP_ORDER:
            if kind in rows:
                return int(rows[kind])
        return None

    def generation_of(self, person_id: int, conn: Connection | None = None) -> int | None:
        """The person's generation, for a link to name; None for someone merged away or unknown."""
        with _reader(self._engine, conn) as c:
            found = c.scalar(_GENERATION, {"person": person_id})
        return None if found is None else int(found)

    def person_ids(self) -> list[int]:
        """Every person not merged away, in person id order."""
        with self._engine.connect() as conn:
            query = (
                select(people.c.person_id).where(people.c.merged_into.is_(None)).order_by(people.c.person_id)
            )
            return [int(p) for p in conn.scalars(query)]

    def with_merged(self, person_id: int, conn: Connection | None = None) -> list[int]:
        """A person and everyone merged into them (their events moved; other rows may still name them)."""
        with _reader(self._engine, conn) as c:
            merged = c.scalars(select(people.c.person_id).where(people.c.merged_into == person_id)).all()
        return [person_id, *(int(p) for p in merged)]

    def external_ids(
        self, person_ids: Sequence[int], conn: Connection | None = None
    ) -> list[tuple[str, str]]:
        """These people's external ids as (kind, value), in the order they were linked."""
        with _reader(self._engine, conn) as c:
            rows = c.execute(
                select(identities.c.kind, identities.c.value)
                .where(identities.c.person_id.in_(list(person_ids)))
                .order_by(identities.c.id)
            ).all()
        return [(r.kind, r.value) for r in rows]

    def unit_ids(self, person_id: int, conn: Connection) -> dict[str, str]:
        """The person's first userId and first anonymousId (theirs or merged into them), by kind."""
        first: dict[str, str] = {}
        for kind, value in conn.execute(_UNIT_IDS, {"person": person_id}):
            if kind in _UNIT_KINDS:
                first.setdefault(kind, value)
        return first

    def identities_of(self, person_id: int, conn: Connection | None = None) -> list[Identity]:
        with _reader(self._engine, conn) as c:
            rows = c.execute(
                select(identities.c.kind, identities.c.value, identities.c.created_at)
                .where(identities.c.person_id == person_id)
                .order_by(identities.c.created_at, identities.c.id)
            ).all()
        return [Identity(kind=r.kind, value=r.value, linked_at=r.created_at) for r in rows]

    def merges(self, person_id: int | None = None, conn: Connection | None = None) -> list[Merge]:
        """Every recorded merge and refusal, oldest first; or those touching one person."""
        query = select(merges).order_by(merges.c.id)
        if person_id is not None:
            query = query.where(
                (merges.c.from_person_id == person_id) | (merges.c.into_person_id == person_id)
            )
        with _reader(self._engine, conn) as c:
            rows = c.execute(query).all()
        return [
            Merge(
                id=r.id,
                from_person_id=r.from_person_id,
                into_person_id=r.into_person_id,
                outcome=_outcome(r.outcome),
                reason=r.reason,
                message_id=r.message_id,
                at=r.at,
            )
            for r in rows
        ]


def _outcome(value: str) -> Literal["merged", "refused"]:
    return "refused" if value == "refused" else "merged"


class _reader:
    """Use the caller's connection when given, else a short-lived one."""

    def __init__(self, engine: Engine, conn: Connection | None) -> None:
        self._engine = engine
        self._given = conn
        self._own: Connection | None = None

    def __enter__(self) -> Connection:
        if self._given is not None:
            return self._given
        self._own = self._engine.connect()
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()
