"""Audiences in the database: one query per kind of condition leaf, and the saved audiences themselves.

Each `*_people` function builds a `SELECT person_id` of the live people (not merged away, not erased) a
leaf covers, optionally restricted to some person ids; `person_ids` runs one and makes the ids distinct.
The queries over events and interactions ask for no DISTINCT: SQLite would then walk the person index
(all of it) rather than the time index or the table, 10x slower over 1M events (benchmarks/audiences.py).

Events and interactions are re-pointed when people merge, so their person ids are live already;
consents, persona members, wishes and outbox rows may still name a person merged away, and are read
through `people.merged_into`.
`shopkeeper.personas.members` combines the leaves (docs/audiences.md).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer

from shopkeeper.errors import NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import (
    audiences,
    consents,
    events,
    interactions,
    items,
    outbox,
    people,
    persona_members,
    traits,
    wishes,
)

PURCHASE = 0  # interactions.kind
Only = Sequence[int] | None


class _Find(FunctionElement[int]):
    """Where `needle` starts in `haystack` (1-based; 0 when absent), case-sensitive on both backends
    (SQLite's LIKE is not)."""

    type = Integer()
    inherit_cache = True


@compiles(_Find)
def _find_sqlite(element: _Find, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Find, "postgresql")
def _find_postgresql(element: _Find, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def person_ids(conn: Connection, statement: Select[Any]) -> npt.NDArray[np.int64]:
    """Run a `SELECT person_id`: its ids, sorted and distinct."""
    found = conn.execute(statement).scalars().all()
    return np.unique(np.fromiter(found, np.int64, count=len(found)))


def _owner() -> ColumnElement[int]:
    return func.coalesce(people.c.merged_into, people.c.person_id)


def _owned(table: Table, where: list[ColumnElement[bool]], only: Only) -> Select[Any]:
    """The live owners of `table`'s rows that meet `where` (a row of someone merged away is the
    person's they were merged into)."""
    owner = _owner()
    if only is not None:
        ids = list(only)
        where = [*where, or_(people.c.person_id.in_(ids), people.c.merged_into.in_(ids)), owner.in_(ids)]
    joined = table.join(people, people.c.person_id == table.c.person_id)
    return select(owner).select_from(joined).where(*where).distinct()


def known_people(only: Only = None) -> Select[Any]:
    """Every live person (or those of `only`)."""
    statement = select(people.c.person_id).where(people.c.merged_into.is_(None))
    return statement if only is None else statement.where(people.c.person_id.in_(list(only)))


def active_people(since: datetime, only: Only = None) -> Select[Any]:
    """The live people with any event since `since` (they bought or visited): one probe of the
    (person, time) index each, which beats reading every event of the period."""
    recent = exists().where(events.c.person_id == people.c.person_id, events.c.timestamp >= since)
    return known_people(only).where(recent)


def buying_people(since: datetime, only: Only = None) -> Select[Any]:
    """The live people who bought anything since `since` (as `active_people`)."""
    bought = exists().where(
        interactions.c.person_id == people.c.person_id,
        interactions.c.at >= since,
        interactions.c.kind == PURCHASE,
    )
    return known_people(only).where(bought)


def event_people(
    name: str,
    *,
    at_least: int = 1,
    at_most: int | None = None,
    since: datetime | None = None,
    only: Only = None,
) -> Select[Any]:
    """The people with `at_least` to `at_most` events named `name` (since `since`)."""
    where = [events.c.event == name]
    if since is not None:
        where.append(events.c.timestamp >= since)
    if only is not None:
        where.append(events.c.person_id.in_(list(only)))
    statement = select(events.c.person_id).where(*where)
    if at_least <= 1 and at_most is None:
        return statement  # repeats and all: `person_ids` makes them distinct (see the module docstring)
    having = [func.count() >= at_least]
    if at_most is not None:
        having.append(func.count() <= at_most)
    return statement.group_by(events.c.person_id).having(*having)


def in_category(category: str) -> ColumnElement[bool]:
    """An item's category path is `category` or has it as one of its " > " parts (case-sensitive)."""
    path = literal(" > ").concat(items.c.category).concat(" > ")
    return or_(items.c.category == category, _Find(path, f" > {category} > ") > 0)


@dataclass(frozen=True, slots=True)
class PurchaseTest:
    """What a `purchased` leaf asks of a person's purchases."""

    category: str | None = None
    item: str | None = None
    since: datetime | None = None
    at_least: int = 1  # orders: distinct message ids
    spend_gte: float | None = None  # sum(quantity x today's catalog price)
    spend_lte: float | None = None


def purchase_people(test: PurchaseTest, only: Only = None) -> Select[Any]:
    """The people whose purchases (interactions of kind 0) meet `test`."""
    where = [interactions.c.kind == PURCHASE]
    if test.since is not None:
        where.append(interactions.c.at >= test.since)
    if test.item is not None:
        where.append(interactions.c.item_id == test.item)
    if only is not None:
        where.append(interactions.c.person_id.in_(list(only)))
    spend = test.spend_gte is not None or test.spend_lte is not None
    source: Any = interactions
    if test.category is not None:  # the category's items first: a few, where a join checks every row
        where.append(interactions.c.item_id.in_(select(items.c.item_id).where(in_category(test.category))))
    if spend:
        source = interactions.outerjoin(items, items.c.item_id == interactions.c.item_id)
    statement = select(interactions.c.person_id).select_from(source).where(*where)
    if test.at_least <= 1 and not spend:
        return statement
    having = []
    if test.at_least > 1:
        having.append(func.count(interactions.c.message_id.distinct()) >= test.at_least)
    total = func.coalesce(func.sum(interactions.c.quantity * func.coalesce(items.c.price, 0.0)), 0.0)
    if test.spend_gte is not None:
        having.append(total >= test.spend_gte)
    if test.spend_lte is not None:
        having.append(total <= test.spend_lte)
    return statement.group_by(interactions.c.person_id).having(*having)


def persona_people(persona: str, only: Only = None) -> Select[Any]:
    """The people whose persona now is `persona`: their own membership (a person merged away since the run
    had a persona of their own, which does not pass to the person they were merged into)."""
    where = [persona_members.c.persona_id == persona, people.c.merged_into.is_(None)]
    if only is not None:
        where.append(persona_members.c.person_id.in_(list(only)))
    joined = persona_members.join(people, people.c.person_id == persona_members.c.person_id)
    return select(persona_members.c.person_id).select_from(joined).where(*where)


def consent_choices(purpose: str, *, granted: bool, only: Only = None) -> Select[Any]:
    """The people whose newest entry on `purpose` (theirs or of anyone merged into them) is `granted`.
    People with no entry are left out: what they count as is the shop's default, the caller's to apply."""
    owner = _owner()
    where = [consents.c.purpose == purpose]
    if only is not None:
        ids = list(only)
        where.append(or_(people.c.person_id.in_(ids), people.c.merged_into.in_(ids)))
    newest = (
        select(owner.label("owner"), func.max(consents.c.id).label("id"))
        .select_from(consents.join(people, people.c.person_id == consents.c.person_id))
        .where(*where)
        .group_by(owner)
        .subquery()
    )
    return (
        select(newest.c.owner)
        .join(consents, consents.c.id == newest.c.id)
        .where(consents.c.granted == int(granted))
    )


def wish_people(item: str | None, status: str, only: Only = None) -> Select[Any]:
    """The people with a wish of this status (for `item`, or for anything)."""
    where = [wishes.c.status == status]
    if item is not None:
        where.append(wishes.c.item_id == item)
    return _owned(wishes, where, only)


def moment_people(rule: str | None, status: str, since: datetime | None, only: Only = None) -> Select[Any]:
    """The people with an outbox row of this status (of `rule`, or of any), sent (or, unsent, made)
    since `since`."""
    where = [outbox.c.status == status]
    if rule is not None:
        where.append(outbox.c.rule == rule)
    if since is not None:
        where.append(func.coalesce(outbox.c.sent_at, outbox.c.created_at) >= since)
    return _owned(outbox, where, only)


def trait_values(
    conn: Connection, key: str, fresh: Mapping[str, datetime | None], only: Only = None
) -> list[tuple[int, str, str]]:
    """(person id, source, value as JSON) of the trait `key` of live people (or of those of `only`), for
    each source in `fresh` whose row has not expired: updated at or after its bound (None: never expires).
    What `profiles.traits.resolve` chooses among, read without the rest of each row."""
    kept = [
        traits.c.source == source
        if since is None
        else and_(traits.c.source == source, traits.c.updated_at >= since)
        for source, since in fresh.items()
    ]
    merged = select(people.c.person_id).where(people.c.merged_into.is_not(None))  # few: read once
    where = [traits.c.key == key, traits.c.person_id.not_in(merged), or_(*kept)]
    if only is not None:
        where.append(traits.c.person_id.in_(list(only)))
    query = select(traits.c.person_id, traits.c.source, traits.c.value).where(*where)
    return [(int(person), source, value) for person, source, value in conn.execute(query)]


# ---- saved audiences ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audience:
    """A saved audience: a name and a condition in the audience language."""

    name: str
    condition: dict[str, Any]
    description: str | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class SqlAudiences:
    """Saved audiences by name. Names and conditions are checked by the caller (`shopkeeper.personas`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(
        self, name: str, condition: dict[str, Any], description: str | None, now: datetime
    ) -> tuple[Audience, bool]:
        """Create the audience, or replace its condition and description: the row, and whether it is new."""
        body = orjson.dumps(condition).decode()
        with write_transaction(self._engine) as conn:
            found = conn.execute(select(audiences.c.created_at).where(audiences.c.name == name)).first()
            if found is None:
                values = {"name": name, "condition": body, "description": description}
                conn.execute(insert(audiences).values(**values, created_at=now, updated_at=now))
                return Audience(name, condition, description, now, now), True
            conn.execute(
                update(audiences)
                .where(audiences.c.name == name)
                .values(condition=body, description=description, updated_at=now)
            )
            return Audience(name, condition, description, found.created_at, now), False

    def get(self, name: str) -> Audience:
        with self._engine.connect() as conn:
            row = conn.execute(select(audiences).where(audiences.c.name == name)).first()
        if row is None:
            raise NotFound(f"no audience is named {name!r}", field="name")
        return _audience(row)

    def list(self) -> builtins.list[Audience]:
        """Every saved audience, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(audiences).order_by(audiences.c.name)).all()
        return [_audience(row) for row in rows]

    def delete(self, name: str) -> bool:
        """Delete the audience; False when there was none of that name."""
        with write_transaction(self._engine) as conn:
            done = conn.execute(delete(audiences).where(audiences.c.name == name))
        return bool(done.rowcount)


def _audience(row: Any) -> Audience:
    condition: dict[str, Any] = orjson.loads(row.condition)
    return Audience(row.name, condition, row.description, row.created_at, row.updated_at)
