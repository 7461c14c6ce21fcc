"""What the moment engine reads and keeps: wishes (the promise ledger), rules, its cursors over the event
log and the catalog's history, and the facts a trigger or a re-check needs (stock, prices, carts, orders).

Writes run inside the caller's write transaction, so that a moment, its outbox row and the cursor that
passed it are one commit. What a wish or a moment *means* is `shopkeeper.moments`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update

from shopkeeper.store.interactions import CART, PURCHASE, VIEW
from shopkeeper.store.schema import (
    events,
    interactions,
    item_history,
    item_variants,
    items,
    moment_cursors,
    moment_rules,
    traits,
    wishes,
)
from shopkeeper.store.traits import insert_ignoring_duplicates


@dataclass(frozen=True, slots=True)
class Wish:
    id: int
    person_id: int
    item_id: str
    variant_id: str
    attributes: dict[str, Any]
    wanted: str
    source: str
    evidence: list[dict[str, Any]]
    note: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    notified_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item_id": self.item_id,
            "variant_id": self.variant_id or None,
            "attributes": self.attributes,
            "source": self.source,
            "evidence": self.evidence,
            "note": self.note,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "notified_at": None if self.notified_at is None else self.notified_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as the moment engine reads it from the log."""

    id: int
    person_id: int
    type: str
    event: str | None
    timestamp: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """A change of price or stock, from the catalog's history."""

    id: int
    item_id: str
    variant_id: str
    field: str
    old_value: float | None
    new_value: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Variant:
    item_id: str
    variant_id: str
    attributes: dict[str, Any]
    price: float | None
    stock: int | None


def _wish(row: Any) -> Wish:
    return Wish(
        id=int(row.id),
        person_id=int(row.person_id),
        item_id=row.item_id,
        variant_id=row.variant_id,
        attributes=orjson.loads(row.attributes),
        wanted=row.wanted,
        source=row.source,
        evidence=orjson.loads(row.evidence),
        note=row.note,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        notified_at=row.notified_at,
    )


class SqlMoments:
    """Wishes, rules, cursors, and the reads of the moment engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- wishes ----------------------------------------------------------------------------------

    @staticmethod
    def wish(conn: Connection, person_id: int, item_id: str, wanted: str) -> Wish | None:
        row = conn.execute(
            select(wishes).where(
                wishes.c.person_id == person_id, wishes.c.item_id == item_id, wishes.c.wanted == wanted
            )
        ).first()
        return None if row is None else _wish(row)

    @staticmethod
    def add_wish(conn: Connection, values: dict[str, Any]) -> int:
        """Insert a wish (`values` as the table's columns, `attributes` and `evidence` as Python)."""
        row = {
            **values,
            "attributes": orjson.dumps(values["attributes"], option=orjson.OPT_SORT_KEYS).decode(),
            "evidence": orjson.dumps(values["evidence"]).decode(),
        }
        key = conn.execute(insert(wishes).values(row)).inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def update_wish(conn: Connection, wish_id: int, values: dict[str, Any]) -> None:
        row = dict(values)
        if "evidence" in row:
            row["evidence"] = orjson.dumps(row["evidence"]).decode()
        if "attributes" in row:
            row["attributes"] = orjson.dumps(row["attributes"], option=orjson.OPT_SORT_KEYS).decode()
        conn.execute(update(wishes).where(wishes.c.id == wish_id).values(**row))

    @staticmethod
    def mark_notified(conn: Connection, notified: Sequence[tuple[int, datetime]]) -> None:
        """Mark wishes notified (one back-in-stock moment made for each), at the restock's time."""
        if notified:
            conn.execute(
                update(wishes)
                .where(wishes.c.id == bindparam("wish"))
                .values(notified_at=bindparam("at"), status="notified"),
                [{"wish": wish_id, "at": at} for wish_id, at in notified],
            )

    @staticmethod
    def wishes_of(conn: Connection, person_ids: Sequence[int]) -> list[Wish]:
        rows = conn.execute(
            select(wishes).where(wishes.c.person_id.in_(list(person_ids))).order_by(wishes.c.id)
        )
        return [_wish(r) for r in rows]

    @staticmethod
    def open_wishes(conn: Connection, item_ids: Iterable[str], now: datetime) -> list[Wish]:
        """The live wishes for these items: open, or notified once (a later restock episode may notify
        again), and not expired."""
        ids = sorted(set(item_ids))
        found: list[Wish] = []
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(wishes).where(
                    wishes.c.item_id.in_(ids[start : start + 500]),
                    wishes.c.status.in_(("open", "notified")),
                    wishes.c.expires_at > now,
                )
            )
            found += [_wish(r) for r in rows]
        return found

    @staticmethod
    def expire_wishes(conn: Connection, now: datetime) -> int:
        return conn.execute(
            update(wishes)
            .where(wishes.c.status == "open", wishes.c.expires_at <= now)
            .values(status="expired", updated_at=now)
        ).rowcount

    @staticmethod
    def close_wishes(
        conn: Connection, person_id: int, item_ids: Sequence[str], status: str, now: datetime
    ) -> int:
        """Close a person's open wishes for these items (bought: `fulfilled`)."""
        return conn.execute(
            update(wishes)
            .where(
                wishes.c.person_id == person_id,
                wishes.c.item_id.in_(list(item_ids)),
                wishes.c.status.in_(("open", "notified")),
            )
            .values(status=status, updated_at=now)
        ).rowcount

    # ---- rules -------------------------------------------------------------------------------------

    def rules(self, conn: Connection | None = None) -> dict[str, tuple[dict[str, Any], str, datetime]]:
        """Every stored rule: its body, origin and time, by name."""
        query = select(moment_rules).order_by(moment_rules.c.name)
        if conn is None:
            with self._engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = conn.execute(query).all()
        return {r.name: (orjson.loads(r.body), r.origin, r.updated_at) for r in rows}

    @staticmethod
    def save_rule(conn: Connection, name: str, body: dict[str, Any], origin: str, now: datetime) -> None:
        conn.execute(delete(moment_rules).where(moment_rules.c.name == name))
        conn.execute(
            insert(moment_rules).values(
                name=name, body=orjson.dumps(body).decode(), origin=origin, updated_at=now
            )
        )

    @staticmethod
    def delete_rule(conn: Connection, name: str) -> bool:
        return bool(conn.execute(delete(moment_rules).where(moment_rules.c.name == name)).rowcount)

    # ---- cursors -----------------------------------------------------------------------------------

    @staticmethod
    def cursor(conn: Connection, name: str) -> int | None:
        found = conn.scalar(select(moment_cursors.c.position).where(moment_cursors.c.name == name))
        return None if found is None else int(found)

    @staticmethod
    def set_cursor(conn: Connection, name: str, position: int, now: datetime) -> None:
        done = conn.execute(
            update(moment_cursors)
            .where(moment_cursors.c.name == name)
            .values(position=position, updated_at=now)
        ).rowcount
        if not done:
            conn.execute(
                insert_ignoring_duplicates(conn, moment_cursors).values(
                    name=name, position=position, updated_at=now
                )
            )

    @staticmethod
    def log_end(conn: Connection) -> tuple[int, int]:
        """The newest event id and catalog-history id (0 for none)."""
        last_event = conn.scalar(select(func.max(events.c.id))) or 0
        last_change = conn.scalar(select(func.max(item_history.c.id))) or 0
        return int(last_event), int(last_change)

    # ---- the feeds -----------------------------------------------------------------------------------

    @staticmethod
    def events_after(conn: Connection, after: int, limit: int) -> list[LoggedEvent]:
        rows = conn.execute(
            select(
                events.c.id,
                events.c.person_id,
                events.c.type,
                events.c.event,
                events.c.timestamp,
                events.c.payload,
            )
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(limit)
        )
        return [
            LoggedEvent(int(r.id), int(r.person_id), r.type, r.event, r.timestamp, orjson.loads(r.payload))
            for r in rows
        ]

    @staticmethod
    def events_of(conn: Connection, person_ids: Sequence[int]) -> list[LoggedEvent]:
        """A person's events, oldest first (a rule's replay)."""
        rows = conn.execute(
            select(
                events.c.id,
                events.c.person_id,
                events.c.type,
                events.c.event,
                events.c.timestamp,
                events.c.payload,
            )
            .where(events.c.person_id.in_(list(person_ids)))
            .order_by(events.c.timestamp, events.c.id)
        )
        return [
            LoggedEvent(int(r.id), int(r.person_id), r.type, r.event, r.timestamp, orjson.loads(r.payload))
            for r in rows
        ]

    @staticmethod
    def changes_after(conn: Connection, after: int, limit: int) -> list[Change]:
        rows = conn.execute(
            select(item_history).where(item_history.c.id > after).order_by(item_history.c.id).limit(limit)
        )
        return [
            Change(int(r.id), r.item_id, r.variant_id, r.field, r.old_value, r.new_value, r.at) for r in rows
        ]

    @staticmethod
    def changes_between(conn: Connection, start: datetime, end: datetime) -> list[Change]:
        rows = conn.execute(
            select(item_history)
            .where(item_history.c.at >= start, item_history.c.at <= end)
            .order_by(item_history.c.id)
        )
        return [
            Change(int(r.id), r.item_id, r.variant_id, r.field, r.old_value, r.new_value, r.at) for r in rows
        ]

    # ---- catalog facts -------------------------------------------------------------------------------

    @staticmethod
    def variants(conn: Connection, item_ids: Iterable[str]) -> dict[str, list[Variant]]:
        """Every variant of these items, by item."""
        ids = sorted(set(item_ids))
        found: dict[str, list[Variant]] = {}
        for start in range(0, len(ids), 500):
            for r in conn.execute(
                select(item_variants).where(item_variants.c.item_id.in_(ids[start : start + 500]))
            ):
                found.setdefault(r.item_id, []).append(
                    Variant(r.item_id, r.variant_id, orjson.loads(r.attributes), r.price, r.stock)
                )
        return found

    @staticmethod
    def item_facts(conn: Connection, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Title, category, price, currency, attributes and creation time of these items."""
        ids = sorted(set(item_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            for r in conn.execute(select(items).where(items.c.item_id.in_(ids[start : start + 500]))):
                found[r.item_id] = {
                    "item_id": r.item_id,
                    "title": r.title,
                    "category": r.category,
                    "price": r.price,
                    "currency": r.currency,
                    "attributes": orjson.loads(r.attributes),
                    "created_at": r.created_at,
                }
        return found

    # ---- what people did -------------------------------------------------------------------------------

    @staticmethod
    def seen_since(
        conn: Connection, item_ids: Iterable[str], since: datetime
    ) -> dict[str, dict[int, datetime]]:
        """Who viewed or carted these items since `since`: person -> their latest time, by item."""
        ids = sorted(set(item_ids))
        found: dict[str, dict[int, datetime]] = {}
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(interactions.c.item_id, interactions.c.person_id, func.max(interactions.c.at))
                .where(
                    interactions.c.item_id.in_(ids[start : start + 500]),
                    interactions.c.kind.in_((VIEW, CART)),
                    interactions.c.at >= since,
                )
                .group_by(interactions.c.item_id, interactions.c.person_id)
            )
            for item_id, person_id, at in rows:
                found.setdefault(item_id, {})[int(person_id)] = at
        return found

    @staticmethod
    def bought_after(
        conn: Connection, person_id: int, since: datetime, item_ids: Sequence[str] | None = None
    ) -> bool:
        """Whether the person bought (any of these items, or anything) after `since`."""
        query = select(interactions.c.id).where(
            interactions.c.person_id == person_id, interactions.c.kind == PURCHASE, interactions.c.at > since
        )
        if item_ids is not None:
            query = query.where(interactions.c.item_id.in_(list(item_ids)))
        return conn.execute(query.limit(1)).first() is not None

    @staticmethod
    def purchases(
        conn: Connection, person_ids: Sequence[int]
    ) -> dict[int, list[tuple[datetime, str, float]]]:
        """Each person's purchases (time, item, quantity), oldest first."""
        found: dict[int, list[tuple[datetime, str, float]]] = {p: [] for p in person_ids}
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(
                    interactions.c.person_id,
                    interactions.c.at,
                    interactions.c.item_id,
                    interactions.c.quantity,
                )
                .where(
                    interactions.c.person_id.in_(ids[start : start + 500]), interactions.c.kind == PURCHASE
                )
                .order_by(interactions.c.at)
            )
            for person_id, at, item_id, quantity in rows:
                found[int(person_id)].append((at, item_id, float(quantity)))
        return found

    @staticmethod
    def newest_purchases(conn: Connection, person_ids: Sequence[int]) -> dict[int, datetime]:
        """Each person's newest purchase time (people who never bought are left out)."""
        found: dict[int, datetime] = {}
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(interactions.c.person_id, func.max(interactions.c.at))
                .where(
                    interactions.c.person_id.in_(ids[start : start + 500]), interactions.c.kind == PURCHASE
                )
                .group_by(interactions.c.person_id)
            )
            found.update({int(p): at for p, at in rows})
        return found

    @staticmethod
    def last_activity(conn: Connection, since: datetime, until: datetime) -> dict[int, datetime]:
        """People whose newest purchase falls between `since` and `until`: their newest purchase time."""
        newest = func.max(interactions.c.at)
        rows = conn.execute(
            select(interactions.c.person_id, newest)
            .where(interactions.c.kind == PURCHASE)
            .group_by(interactions.c.person_id)
            .having(and_(newest >= since, newest <= until))
        )
        return {int(p): at for p, at in rows}

    @staticmethod
    def erase(conn: Connection, person_ids: Sequence[int]) -> int:
        """Delete these people's wishes, inside the caller's write transaction."""
        return conn.execute(delete(wishes).where(wishes.c.person_id.in_(list(person_ids)))).rowcount


def _stated_rows(conn: Connection, keys: Sequence[str]) -> list[Any]:
    return list(
        conn.execute(
            select(traits.c.person_id, traits.c.key, traits.c.value).where(
                traits.c.source == "stated", traits.c.key.in_(list(keys))
            )
        )
    )


class SqlMomentFacts:
    """The slower reads of the moment engine: stated traits across people, orders, stock at a time."""

    @staticmethod
    def stated(conn: Connection, keys: Sequence[str]) -> dict[int, dict[str, Any]]:
        """Every person's stated values of these traits: person -> key -> value."""
        found: dict[int, dict[str, Any]] = {}
        for person_id, key, value in _stated_rows(conn, keys):
            found.setdefault(int(person_id), {})[key] = orjson.loads(value)
        return found

    @staticmethod
    def trait_values(conn: Connection, person_ids: Sequence[int], key: str) -> dict[int, Any]:
        """One observed trait's value for these people (e.g. `revenue`)."""
        found: dict[int, Any] = {}
        ids = sorted(set(person_ids))
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(traits.c.person_id, traits.c.value).where(
                    traits.c.person_id.in_(ids[start : start + 500]),
                    traits.c.key == key,
                    traits.c.source == "observed",
                )
            )
            for person_id, value in rows:
                found[int(person_id)] = orjson.loads(value)
        return found

    @staticmethod
    def orders(
        conn: Connection, person_ids: Sequence[int], up_to: int
    ) -> list[tuple[int, datetime, dict[str, Any]]]:
        """The people's `Order Completed` events up to event id `up_to`: id, time, properties."""
        rows = conn.execute(
            select(events.c.id, events.c.timestamp, events.c.payload)
            .where(
                events.c.person_id.in_(list(person_ids)),
                events.c.type == "track",
                events.c.event == "Order Completed",
                events.c.id <= up_to,
            )
            .order_by(events.c.timestamp, events.c.id)
        )
        found = []
        for event_id, at, payload in rows:
            properties = orjson.loads(payload).get("properties")
            found.append((int(event_id), at, properties if isinstance(properties, dict) else {}))
        return found

    @staticmethod
    def newest_timezone(conn: Connection, person_id: int) -> str | None:
        """The time zone the person's newest event carried (`context.timezone`), if any."""
        row = conn.execute(
            select(events.c.payload)
            .where(events.c.person_id == person_id)
            .order_by(events.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        context = orjson.loads(row.payload).get("context")
        zone = context.get("timezone") if isinstance(context, dict) else None
        return zone if isinstance(zone, str) else None

    @staticmethod
    def stock_at(
        conn: Connection, item_id: str, variant_id: str, at: datetime
    ) -> float | Literal[False] | None:
        """A variant's stock at a past time, from the history: False when the history does not say."""
        before = conn.execute(
            select(item_history.c.new_value)
            .where(
                item_history.c.item_id == item_id,
                item_history.c.variant_id == variant_id,
                item_history.c.field == "stock",
                item_history.c.at <= at,
            )
            .order_by(item_history.c.at.desc(), item_history.c.id.desc())
            .limit(1)
        ).first()
        if before is not None:
            return None if before[0] is None else float(before[0])
        after = conn.execute(
            select(item_history.c.old_value)
            .where(
                item_history.c.item_id == item_id,
                item_history.c.variant_id == variant_id,
                item_history.c.field == "stock",
                item_history.c.at > at,
            )
            .order_by(item_history.c.at, item_history.c.id)
            .limit(1)
        ).first()
        if after is not None:
            return None if after[0] is None else float(after[0])
        return False

    @staticmethod
    def changes_of(conn: Connection, item_ids: Sequence[str]) -> list[Change]:
        rows = conn.execute(
            select(item_history).where(item_history.c.item_id.in_(list(item_ids))).order_by(item_history.c.id)
        )
        return [
            Change(int(r.id), r.item_id, r.variant_id, r.field, r.old_value, r.new_value, r.at) for r in rows
        ]


def recent_interactions(
    conn: Connection, person_ids: Sequence[int], since: datetime, limit: int = 50
) -> list[tuple[str, int, datetime]]:
    """The people's purchases, carts and views since `since`, newest first: item, kind, time."""
    rows = conn.execute(
        select(interactions.c.item_id, interactions.c.kind, interactions.c.at)
        .where(interactions.c.person_id.in_(list(person_ids)), interactions.c.at >= since)
        .order_by(interactions.c.at.desc(), interactions.c.id.desc())
        .limit(limit)
    )
    return [(item_id, int(kind), at) for item_id, kind, at in rows]
