"""Many rows into one table in one round trip: the lean path that ingestion writes through.

SQLAlchemy's own executemany builds and processes a parameter dict per row (about 10 µs each); at
thousands of rows a second that is a large share of the write path, spent under the write lock. Here
each column's bind processor is looked up once per dialect and applied in a plain loop, so values are
stored exactly as `conn.execute(insert(table), rows)` would store them.

SQLite gets one DBAPI `executemany` (its loop is in C). PostgreSQL gets one multi-row `INSERT ...
VALUES (...), (...)` per chunk of rows: psycopg's executemany pipelines a statement per row, and its
per-row Python work was the largest cost of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, Table

_Processor = Callable[[Any], Any] | None
_MAX_PARAMETERS = 16_000  # per PostgreSQL statement (the protocol allows 65,535)


class BulkInsert:
    """`INSERT INTO table (columns) VALUES (...)` for rows given as tuples in `columns` order."""

    def __init__(self, table: Table, columns: Sequence[str], *, skip_duplicates: bool = False) -> None:
        """`skip_duplicates`: `ON CONFLICT DO NOTHING` (a row that breaks a unique key is left out)."""
        self._table = table
        self._columns = tuple(columns)
        self._suffix = " ON CONFLICT DO NOTHING" if skip_duplicates else ""
        missing = [name for name in self._columns if name not in table.c]
        if missing:  # a typo fails at import, not on the first write
            raise KeyError(f"{table.name} has no column {missing[0]!r}")
        self._prepared: dict[str, tuple[str, str, tuple[_Processor, ...]]] = {}
        self._active: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}
        self._last: dict[int, tuple[Any, Dialect, Any]] = {}  # column -> (value, dialect, bound value)

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    def _prepare(self, dialect: Dialect) -> tuple[str, str, tuple[_Processor, ...]]:
        """`INSERT INTO t (columns) VALUES `, one row's `(?, ?, ...)`, and each column's processor."""
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            quote = dialect.identifier_preparer
            marker = "?" if dialect.paramstyle == "qmark" else "%s"
            head = (
                f"INSERT INTO {quote.format_table(self._table)} "
                f"({', '.join(quote.quote(name) for name in self._columns)}) VALUES "
            )
            row = f"({', '.join(marker for _ in self._columns)})"
            processors = tuple(
                self._table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in self._columns
            )
            prepared = self._prepared[dialect.name] = (head, row, processors)
        return prepared

    def _active_processors(self, dialect: Dialect) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        active = self._active.get(dialect.name)
        if active is None:
            processors = self._prepare(dialect)[2]
            active = self._active[dialect.name] = tuple(
                (i, p) for i, p in enumerate(processors) if p is not None
            )
        return active

    def processed_columns(self, dialect: Dialect) -> tuple[str, ...]:
        """The columns whose values the driver takes processed (the others it takes as they are)."""
        return tuple(self._columns[i] for i, _ in self._active_processors(dialect))

    def bind_value(self, dialect: Dialect, column: str, value: Any) -> Any:
        """One column's value as the driver takes it: for rows that share it, to process it once."""
        process = self._prepare(dialect)[2][self._columns.index(column)]
        return value if process is None else process(value)

    def bind(self, dialect: Dialect, values: Sequence[Any]) -> tuple[Any, ...]:
        """The values of the first `len(values)` columns as the driver takes them, so that the work can
        be done before a lock is taken; finish the row and pass it to `execute(..., bound=True)`."""
        active = self._active_processors(dialect)
        if not active:
            return tuple(values)
        bound = list(values)
        size = len(bound)
        last = self._last
        for index, process in active:
            if index < size:
                value = bound[index]
                # Rows of one call share values (the time received): process each object once. The
                # entry is replaced whole, so a thread never pairs one value with another's result.
                entry = last.get(index)
                if entry is not None and entry[0] is value and entry[1] is dialect:
                    bound[index] = entry[2]
                else:
                    bound[index] = processed = process(value)
                    last[index] = (value, dialect, processed)
        return tuple(bound)

    def execute(self, conn: Connection, rows: Iterable[Sequence[Any]], *, bound: bool = False) -> int:
        """Insert the rows (value tuples in `columns` order); the number inserted.

        `bound=True`: the values went through `bind` already (the columns left for `execute` to fill must
        then need no processing, like integer ids).
        """
        head, row_sql, processors = self._prepare(conn.dialect)
        active = [] if bound else [(i, p) for i, p in enumerate(processors) if p is not None]
        if active:
            params = []
            for row in rows:
                values = list(row)
                for index, process in active:
                    values[index] = process(values[index])
                params.append(tuple(values))
        else:
            params = [tuple(row) for row in rows]
        if not params:
            return 0
        if conn.dialect.name != "postgresql":
            conn.exec_driver_sql(head + row_sql + self._suffix, params)
            return len(params)
        per_statement = max(1, _MAX_PARAMETERS // len(self._columns))
        for start in range(0, len(params), per_statement):
            chunk = params[start : start + per_statement]
            rows_sql = ", ".join([row_sql] * len(chunk))
            flat = tuple(value for row in chunk for value in row)
            conn.exec_driver_sql(head + rows_sql + self._suffix, flat)
        return len(params)


def any_of(dialect: Dialect, values: Sequence[str]) -> tuple[str, Any]:
    """`IN <one parameter>` for a list of strings, and that parameter: a PostgreSQL array, or a JSON
    array that SQLite unpacks with `json_each`. The SQL stays the same whatever the list's length, so
    nothing is compiled again per call, and both backends still look each value up in the index."""
    if dialect.name == "postgresql":
        return "= ANY(%s)", list(values)
    return "IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()
