"""The event log: append-only, the source of truth. Profiles and models are derived from it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select

from shopkeeper.store.bulk import BulkInsert, any_of
from shopkeeper.store.schema import events

# The person last: the append path binds the rest before it takes the write lock, and adds the person
# under it.
EVENT_COLUMNS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "key_id",
    "revenue",
    "payload",
    "person_id",
)
APPEND_EVENTS = BulkInsert(events, EVENT_COLUMNS)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one call's messages. `stored + duplicates == received`."""

    received: int
    stored: int
    duplicates: int


class SqlEventLog:
    """Appends messages and answers questions about them. Rows are never updated, only appended."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @staticmethod
    def existing_message_ids(conn: Connection, message_ids: Iterable[str]) -> set[str]:
        wanted = list(set(message_ids))
        if not wanted:
            return set()
        condition, param = any_of(conn.dialect, wanted)
        table = conn.dialect.identifier_preparer.format_table(events)
        query = f"SELECT message_id FROM {table} WHERE message_id {condition}"
        return {row[0] for row in conn.exec_driver_sql(query, (param,)).fetchall()}

    @staticmethod
    def append_bound(conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Append rows given as value tuples in `EVENT_COLUMNS` order, all but the person already bound
        with `APPEND_EVENTS.bind` (see `shopkeeper.events.append`)."""
        APPEND_EVENTS.execute(conn, rows, bound=True)

    def timestamp_of(self, message_id: str) -> datetime | None:
        """When the stored message with this id happened, or None when there is none."""
        with self._engine.connect() as conn:
            found = conn.scalar(select(events.c.timestamp).where(events.c.message_id == message_id))
        return _as_utc(found)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(events)) or 0)

    def has_message(self, message_id: str) -> bool:
        with self._engine.connect() as conn:
            return conn.scalar(select(events.c.id).where(events.c.message_id == message_id)) is not None

    def stored_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        with self._engine.connect() as conn:
            return self.existing_message_ids(conn, message_ids)

    def counts_for_person(self, person_id: int, conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(events.c.type, func.count()).where(events.c.person_id == person_id).group_by(events.c.type)
        )
        return {row[0]: int(row[1]) for row in rows}

    def span_for_person(self, person_id: int, conn: Connection) -> tuple[datetime | None, datetime | None]:
        row = conn.execute(
            select(func.min(events.c.timestamp), func.max(events.c.timestamp)).where(
                events.c.person_id == person_id
            )
        ).one()
        # min/max bypass the column type on some backends; normalise through it.
        return _as_utc(row[0]), _as_utc(row[1])

    def for_person(self, person_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest messages of one person, newest first, as stored."""
        with self._engine.connect() as conn:
            payloads = conn.scalars(
                select(events.c.payload)
                .where(events.c.person_id == person_id)
                .order_by(events.c.timestamp.desc(), events.c.id.desc())
                .limit(limit)
            )
            return [orjson.loads(p) for p in payloads]

    @staticmethod
    def payloads_by_person(
        person_ids: Sequence[int], conn: Connection
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """These people's messages as (person id, message), by person, then oldest first."""
        query = (
            select(events.c.person_id, events.c.payload)
            .where(events.c.person_id.in_(list(person_ids)))
            .order_by(events.c.person_id, events.c.timestamp, events.c.id)
        )
        for person_id, payload in conn.execute(query):
            yield int(person_id), orjson.loads(payload)

    @staticmethod
    def payloads(person_ids: Sequence[int], conn: Connection, *, limit: int) -> list[dict[str, Any]]:
        """The oldest `limit` messages of these people, oldest first, as stored."""
        query = (
            select(events.c.payload)
            .where(events.c.person_id.in_(list(person_ids)))
            .order_by(events.c.timestamp, events.c.id)
            .limit(limit)
        )
        return [orjson.loads(p) for p in conn.scalars(query)]


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ORDER_COMPLETED = "Order Completed"


def order_revenue(payload: dict[str, Any]) -> float:
    """An order's revenue as the profiles read it: `revenue`, else `total`, else price x quantity over
    its products; 0 when it names none. What `events.revenue` keeps for each "Order Completed"."""
    properties = payload.get("properties") or {}
    if not isinstance(properties, dict):
        return 0.0
    for key in ("revenue", "total"):
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    total = 0.0
    for product in properties.get("products") or []:
        if isinstance(product, dict):
            price, quantity = product.get("price"), product.get("quantity", 1)
            if isinstance(price, int | float) and isinstance(quantity, int | float):
                total += float(price) * float(quantity)
    return total if math.isfinite(total) else 0.0


def kept_revenue(kind: str, event: str | None, payload: dict[str, Any]) -> float | None:
    """What `events.revenue` keeps for an event: an order's revenue, None for anything else."""
    return order_revenue(payload) if kind == "track" and event == ORDER_COMPLETED else None


def stored_revenue(payload: str) -> float:
    """`order_revenue` of a stored payload (JSON text); 0 when it is not an object."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 0.0
    return order_revenue(parsed) if isinstance(parsed, dict) else 0.0
