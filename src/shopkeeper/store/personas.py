"""What persona discovery reads and keeps: the facts it measures people by, each run, the personas with
their ids and names, each person's persona now (and the `persona` guess it makes), and erasure of them.

What a persona *means*, and how it is found, is `shopkeeper.personas`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from shopkeeper.errors import Conflict, NotFound
from shopkeeper.store.interactions import PURCHASE
from shopkeeper.store.schema import (
    interactions,
    items,
    people,
    persona_members,
    persona_runs,
    personas,
    trait_rejections,
    traits,
)

PERSONA_TRAIT = "persona"


@dataclass(frozen=True, slots=True)
class PersonaRow:
    persona_id: str
    name: str
    renamed: bool
    run_id: int
    active: bool
    body: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    at: datetime
    method: str
    seed: int
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Member:
    person_id: int
    persona_id: str
    confidence: float


class SqlPersonas:
    """Reads for discovery, and the runs, personas and members it writes (one write transaction a run)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- what discovery measures people by ------------------------------------------------------

    def orders(self, conn: Connection) -> list[tuple[int, datetime, float]]:
        """Every order of a live person: (person, when, its value at the catalog's prices)."""
        value = func.sum(interactions.c.quantity * func.coalesce(items.c.price, 0.0))
        query = (
            select(interactions.c.person_id, func.min(interactions.c.at), value)
            .select_from(interactions.outerjoin(items, items.c.item_id == interactions.c.item_id))
            .where(interactions.c.kind == PURCHASE)
            .group_by(interactions.c.person_id, interactions.c.message_id)
        )
        return [(int(p), at, float(v or 0.0)) for p, at, v in conn.execute(query)]

    def interactions(self, conn: Connection) -> Iterable[tuple[int, str, str, int, datetime, float]]:
        """Every interaction with an item: (person, item, category path, kind, when, quantity)."""
        query = select(
            interactions.c.person_id,
            interactions.c.item_id,
            func.coalesce(items.c.category, ""),
            interactions.c.kind,
            interactions.c.at,
            interactions.c.quantity,
        ).select_from(interactions.outerjoin(items, items.c.item_id == interactions.c.item_id))
        for p, item, category, kind, at, quantity in conn.execute(query):
            yield int(p), item, category, int(kind), at, float(quantity)

    def first_seen(self, conn: Connection) -> dict[int, datetime]:
        """When each live person was first seen."""
        query = select(people.c.person_id, people.c.created_at).where(people.c.merged_into.is_(None))
        return {int(p): at for p, at in conn.execute(query)}

    def trait_values(self, conn: Connection, keys: Sequence[str]) -> list[tuple[int, str, str, Any]]:
        """Every stored row of these traits: (person, key, source, value)."""
        query = select(traits.c.person_id, traits.c.key, traits.c.source, traits.c.value).where(
            traits.c.key.in_(list(keys))
        )
        return [(int(p), k, s, orjson.loads(v)) for p, k, s, v in conn.execute(query)]

    def rejected(self, conn: Connection) -> dict[int, set[str | None]]:
        """Who rejected their persona, and which (its name or id; None: whatever it is)."""
        owner = func.coalesce(people.c.merged_into, trait_rejections.c.person_id)
        query = (
            select(owner, trait_rejections.c.value)
            .select_from(
                trait_rejections.outerjoin(people, people.c.person_id == trait_rejections.c.person_id)
            )
            .where(trait_rejections.c.key == PERSONA_TRAIT)
        )
        found: dict[int, set[str | None]] = {}
        for person, value in conn.execute(query):
            found.setdefault(int(person), set()).add(None if value is None else str(orjson.loads(value)))
        return found

    def currency(self, conn: Connection) -> str | None:
        """The currency most of the shop's items are priced in."""
        query = (
            select(items.c.currency)
            .where(items.c.currency.is_not(None))
            .group_by(items.c.currency)
            .order_by(func.count().desc(), items.c.currency)
            .limit(1)
        )
        return conn.scalar(query)

    def titles(self, item_ids: Sequence[str]) -> dict[str, str]:
        """These items' titles."""
        if not item_ids:
            return {}
        with self._engine.connect() as conn:
            query = select(items.c.item_id, items.c.title).where(items.c.item_id.in_(list(item_ids)))
            return {str(i): str(t) for i, t in conn.execute(query)}

    # ---- runs, personas, members ----------------------------------------------------------------

    def members(self, conn: Connection | None = None) -> dict[int, str]:
        """Each person's persona now."""
        if conn is None:
            with self._engine.connect() as own:
                return self.members(own)
        query = select(persona_members.c.person_id, persona_members.c.persona_id)
        return {int(p): str(i) for p, i in conn.execute(query)}

    def member(self, conn: Connection, person_id: int) -> Member | None:
        row = conn.execute(select(persona_members).where(persona_members.c.person_id == person_id)).first()
        return None if row is None else Member(int(row.person_id), row.persona_id, float(row.confidence))

    def all(self, *, active_only: bool = True) -> list[PersonaRow]:
        query = select(personas).order_by(personas.c.persona_id)
        if active_only:
            query = query.where(personas.c.active == 1)
        with self._engine.connect() as conn:
            return [_persona(r) for r in conn.execute(query)]

    def get(self, persona_id: str, conn: Connection | None = None) -> PersonaRow:
        if conn is None:
            with self._engine.connect() as own:
                return self.get(persona_id, own)
        row = conn.execute(select(personas).where(personas.c.persona_id == persona_id)).first()
        if row is None:
            raise NotFound(f"no persona {persona_id!r}; `shopkeeper personas list` shows them", field="id")
        return _persona(row)

    def latest_run(self) -> RunRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(persona_runs).order_by(persona_runs.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return RunRow(int(row.id), row.at, row.method, int(row.seed), orjson.loads(row.summary))

    def ids(self, conn: Connection) -> list[str]:
        return [str(i) for i in conn.scalars(select(personas.c.persona_id))]

    def latest_run_id(self, conn: Connection) -> int | None:
        newest = conn.scalar(select(func.max(persona_runs.c.id)))
        return None if newest is None else int(newest)

    def save_run(
        self,
        conn: Connection,
        run: RunRow,
        found: Sequence[PersonaRow],
        members: Sequence[Member],
        guesses: Sequence[tuple[int, str, float, dict[str, Any]]],
        *,
        after: int | None = None,
    ) -> int:
        """Write a run, inside the caller's write transaction: its summary; its personas (those it did not
        find are kept, inactive, so that a later run may find them again); every person's persona; and
        the `persona` guesses (person, persona name, confidence, evidence). Returns the run's id.

        The run was computed from what was read before this transaction: `after` is the newest run it
        saw (another run saved since is a Conflict), and people erased or merged away since are left out
        of its members, its guesses and its personas' typical members."""
        if self.latest_run_id(conn) != after:
            raise Conflict(
                "another persona discovery finished while this one was running; run it again", field="run"
            )
        live = {
            int(p) for p in conn.scalars(select(people.c.person_id).where(people.c.merged_into.is_(None)))
        }
        run_id = int(
            conn.execute(
                insert(persona_runs)
                .values(at=run.at, method=run.method, seed=run.seed, summary=_json(run.summary))
                .returning(persona_runs.c.id)
            ).scalar_one()
        )
        named = self._save_personas(conn, run_id, run.at, found, live)
        self._save_members(
            conn,
            run_id,
            run.at,
            [m for m in members if m.person_id in live],
            [g for g in guesses if g[0] in live],
            named,
        )
        return run_id

    def _save_personas(
        self, conn: Connection, run_id: int, at: datetime, found: Sequence[PersonaRow], live: set[int]
    ) -> dict[str, str]:
        """The run's personas, keeping a marketer's name given while it ran (read under the lock); returns
        the marketers' names by persona id."""
        conn.execute(update(personas).values(active=0))
        known = set(self.ids(conn))
        renamed = select(personas.c.persona_id, personas.c.name).where(personas.c.renamed == 1)
        named: dict[str, str] = {str(i): str(n) for i, n in conn.execute(renamed)}
        for row in found:
            body = row.body | {
                "typical_members": [p for p in row.body.get("typical_members", []) if p in live]
            }
            values = {
                "name": named.get(row.persona_id, row.name),
                "renamed": int(row.renamed or row.persona_id in named),
                "run_id": run_id,
                "active": 1,
                "body": _json(body),
                "updated_at": at,
            }
            if row.persona_id in known:
                conn.execute(update(personas).where(personas.c.persona_id == row.persona_id).values(**values))
            else:
                conn.execute(insert(personas).values(persona_id=row.persona_id, **values))
        return named

    @staticmethod
    def _save_members(
        conn: Connection,
        run_id: int,
        at: datetime,
        members: Sequence[Member],
        guesses: Sequence[tuple[int, str, float, dict[str, Any]]],
        named: dict[str, str],
    ) -> None:
        conn.execute(delete(persona_members))
        if members:
            conn.execute(
                insert(persona_members),
                [
                    {"person_id": m.person_id, "persona_id": m.persona_id, "confidence": m.confidence}
                    | {"run_id": run_id}
                    for m in members
                ],
            )
        conn.execute(delete(traits).where(traits.c.key == PERSONA_TRAIT, traits.c.source == "inferred"))
        if guesses:
            conn.execute(
                insert(traits),
                [
                    {
                        "person_id": person,
                        "key": PERSONA_TRAIT,
                        "source": "inferred",
                        "value": _json(named.get(str(evidence.get("persona_id")), name)),
                        "updated_at": at,
                        "confirmed_at": None,
                        "confidence": confidence,
                        "evidence": _json(evidence | {"run": run_id}),
                    }
                    for person, name, confidence, evidence in guesses
                ],
            )

    def rename(self, conn: Connection, persona_id: str, name: str, now: datetime) -> None:
        """Name a persona (the name stays across runs), and the guesses that name it."""
        self.get(persona_id, conn)
        conn.execute(
            update(personas)
            .where(personas.c.persona_id == persona_id)
            .values(name=name, renamed=1, updated_at=now)
        )
        members = select(persona_members.c.person_id).where(persona_members.c.persona_id == persona_id)
        conn.execute(
            update(traits)
            .where(
                traits.c.key == PERSONA_TRAIT,
                traits.c.source == "inferred",
                traits.c.person_id.in_(members),
            )
            .values(value=_json(name))
        )

    @staticmethod
    def drop_guess(conn: Connection, person_ids: Sequence[int]) -> None:
        """The persona of these people is gone at once (they said "that's not me", or were erased)."""
        everyone = list(person_ids)
        conn.execute(delete(persona_members).where(persona_members.c.person_id.in_(everyone)))
        conn.execute(
            delete(traits).where(
                traits.c.person_id.in_(everyone),
                traits.c.key == PERSONA_TRAIT,
                traits.c.source == "inferred",
            )
        )

    @staticmethod
    def erase(conn: Connection, person_ids: Sequence[int]) -> int:
        """Delete these people's persona and take them out of the personas' typical members. Returns
        the membership rows deleted."""
        everyone = {int(p) for p in person_ids}
        deleted = conn.execute(
            delete(persona_members).where(persona_members.c.person_id.in_(list(everyone)))
        ).rowcount
        for persona_id, body in conn.execute(select(personas.c.persona_id, personas.c.body)).all():
            kept = orjson.loads(body)
            typical = kept.get("typical_members", [])
            if any(int(p) in everyone for p in typical):
                kept["typical_members"] = [p for p in typical if int(p) not in everyone]
                conn.execute(
                    update(personas).where(personas.c.persona_id == persona_id).values(body=_json(kept))
                )
        return int(deleted)


def _persona(row: Any) -> PersonaRow:
    return PersonaRow(
        persona_id=row.persona_id,
        name=row.name,
        renamed=bool(row.renamed),
        run_id=int(row.run_id),
        active=bool(row.active),
        body=orjson.loads(row.body),
        updated_at=row.updated_at,
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
