"""Rows written straight into a shop's tables, for the benchmarks that simulate a shop bigger than any
sample (`audiences.py`, `dashboard.py`): bulk inserts in one transaction (executemany on SQLite, COPY on
PostgreSQL), then ANALYZE, as a live shop's tables would have been analyzed.

Rows are tuples in the order of the columns given for their table; a datetime is stored as the store's
`UtcDateTime` stores it (`stamp`), unless the caller says its rows are `stamped` already (checking every
value costs more than writing it). A table's rows may be any iterable (a generator too): they are
written as they come, so a large table need not be held in memory whole. On SQLite the load gets a page
cache of 256 MB, since rows that go to random places of an index otherwise read its pages again and again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopkeeper.store import Store

CACHE_KIB = 256 * 1024


def stamp(dialect: str, at: datetime) -> str:
    """A UtcDateTime as the backend stores it."""
    if dialect == "sqlite":
        return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return at.isoformat()


def load(
    store: Store,
    rows: Mapping[str, Iterable[tuple[Any, ...]]],
    columns: Mapping[str, Sequence[str]],
    *,
    analyze: bool = True,
    stamped: bool = False,
) -> None:
    """Each table's rows, in the order given, in one transaction; then ANALYZE unless told not to."""
    dialect = store.engine.dialect.name
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect == "sqlite":  # the store's SQLite connections begin their own transactions
            cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
            cursor.execute(f"PRAGMA cache_size={-CACHE_KIB}")
            cursor.execute("BEGIN")
        for table, table_rows in rows.items():
            names = columns[table]
            fixed = table_rows if stamped else _stamped(dialect, table_rows)
            if dialect == "sqlite":
                marks = ", ".join("?" for _ in names)
                cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", fixed)
            else:
                with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in fixed:
                        copy.write_row(row)
        raw.commit()
        if analyze:
            cursor.execute("ANALYZE")
            raw.commit()
        if dialect == "sqlite":
            cursor.execute(f"PRAGMA cache_size={cache}")
    finally:
        raw.close()


def _stamped(dialect: str, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(stamp(dialect, v) if isinstance(v, datetime) else v for v in row)
