"""The event log: append-only, the source of truth. Profiles and models are derived from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select

from shopkeeper.store.bulk import BulkInsert, any_of
from shopkeeper.store.schema import events

# The person last: ingestion binds the rest before it takes the write lock, and adds the person under it.
EVENT_COLUMNS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "key_id",
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
    def append(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows given as dicts with the `EVENT_COLUMNS` (a missing `key_id` is NULL)."""
        APPEND_EVENTS.execute(conn, (tuple(row.get(name) for name in EVENT_COLUMNS) for row in rows))

    @staticmethod
    def append_bound(conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Append rows given as value tuples in `EVENT_COLUMNS` order, all but the person already bound
        with `APPEND_EVENTS.bind`: ingestion's path."""
        APPEND_EVENTS.execute(conn, rows, bound=True)

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


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
