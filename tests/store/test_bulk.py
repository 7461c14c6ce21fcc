"""BulkInsert stores exactly what SQLAlchemy's own `insert` stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text

from shopkeeper.store import Store
from shopkeeper.store.bulk import BulkInsert
from shopkeeper.store.interactions import APPEND_INTERACTIONS
from shopkeeper.store.schema import events, profile_dirty

COLUMNS = ("message_id", "type", "event", "user_id", "anonymous_id", "person_id", "timestamp", "received_at")
AT = datetime(2024, 11, 29, 9, 0, 0, tzinfo=UTC)  # no microseconds: SQLite's text format still has them
ROWS = [
    ("a", "track", "Ordered", "u1", None, 1, AT, AT + timedelta(microseconds=7)),
    ("b", "page", None, None, "anon", 2, AT.astimezone(timezone(timedelta(hours=-5))), AT),
    (
        "c",
        "identify",
        "naïve ☃",
        "ü",
        "",
        3,
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2199, 12, 31, tzinfo=UTC),
    ),
]


def _raw(store: Store, prefix: str) -> list[tuple[object, ...]]:
    """The values as the database holds them (text on SQLite), bypassing the column types."""
    names = ", ".join(COLUMNS[1:])
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {names} FROM events WHERE message_id LIKE :p ORDER BY message_id"),
            {"p": f"{prefix}%"},
        )
        return [tuple(row) for row in rows]


def test_bulk_insert_stores_what_sqlalchemy_stores(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(events),
            [
                {**dict(zip(COLUMNS, row, strict=True)), "message_id": f"x{row[0]}", "payload": "{}"}
                for row in ROWS
            ],
        )
        bulk = BulkInsert(events, (*COLUMNS, "payload"))
        assert bulk.execute(conn, [(f"y{row[0]}", *row[1:], "{}") for row in ROWS]) == 3
    assert _raw(store, "y") == _raw(store, "x")
    with store.engine.connect() as conn:
        stored = conn.execute(select(events.c.timestamp).where(events.c.message_id == "yb")).scalar_one()
    assert stored == AT and stored.tzinfo is not None


def test_a_column_that_is_null_in_every_row_and_many_statements(store: Store) -> None:
    # PostgreSQL gets multi-row VALUES: a column of NULLs only must still take the column's type, and
    # rows past one statement's share of parameters go in the next statement.
    rows = [(f"n{i}", "page", None, None, "a", i, AT, AT, None, "{}") for i in range(2_000)]
    with store.engine.begin() as conn:
        assert BulkInsert(events, (*COLUMNS, "key_id", "payload")).execute(conn, rows) == 2_000
    assert store.events.count() == 2_000
    assert store.events.stored_message_ids(["n0", "n1999", "n2000"]) == {"n0", "n1999"}


def test_duplicates_can_be_skipped(store: Store) -> None:
    with store.engine.begin() as conn:
        marks = BulkInsert(profile_dirty, ("person_id",), skip_duplicates=True)
        assert marks.execute(conn, [(1,), (2,)]) == 2
        marks.execute(conn, [(2,), (3,)])
        assert sorted(conn.scalars(select(profile_dirty.c.person_id))) == [1, 2, 3]


def test_nothing_to_insert_runs_nothing(store: Store) -> None:
    with store.engine.begin() as conn:
        assert BulkInsert(events, COLUMNS).execute(conn, []) == 0


def test_an_unknown_column_fails_when_built() -> None:
    with pytest.raises(KeyError, match="messageId"):
        BulkInsert(events, ("messageId",))


def test_of_the_interactions_only_their_time_needs_binding(store: Store) -> None:
    # The append path binds an event's time once for all its interactions and passes the rest as they
    # are (shopkeeper.events.append.new_event): that holds only while no other column is changed by its
    # processing. SQLite's Float processes a quantity with float(), which leaves a float as it is.
    dialect = store.engine.dialect
    assert set(APPEND_INTERACTIONS.processed_columns(dialect)) <= {"at", "quantity"}
    assert type(APPEND_INTERACTIONS.bind_value(dialect, "quantity", 2.5)) is float
    assert APPEND_INTERACTIONS.bind_value(dialect, "quantity", 2.5) == 2.5
