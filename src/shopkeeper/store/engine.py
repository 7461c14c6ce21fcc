"""Open the store's database by URL: SQLite (WAL) by default, PostgreSQL when the shop grows."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from shopkeeper.errors import StoreError
from shopkeeper.store.deadline import RoundTripWatchdog

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it names the lock that serializes writers and migrations on PostgreSQL.
PG_WRITE_LOCK = 0x5E0B_0001
PG_MIGRATE_LOCK = 0x5E0B_0002


@dataclass(frozen=True)
class Timeouts:
    """How long a server waits on PostgreSQL before answering 503 (seconds; None: as long as it takes).

    `connect`: to open a connection; `statement`: for one statement (PostgreSQL's `statement_timeout`,
    and a client-side deadline a little longer, for a database or network that stopped answering);
    `pool`: for a pooled connection to come free.
    """

    connect: float | None = None
    statement: float | None = None
    pool: float | None = None


def make_engine(
    url: str, *, sqlite_synchronous: str = "FULL", timeouts: Timeouts | None = None, **kwargs: Any
) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and explicit `BEGIN` handling.

    Bound values never appear in SQLAlchemy's error messages (`hide_parameters`): they are request data.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r}", code="bad_database_url") from exc
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # Enough pooled connections for the API's thread pool: a new one costs five PRAGMAs.
        kwargs = {"pool_size": 20, "max_overflow": 20, **kwargs}
    if parsed.get_backend_name() == "postgresql" and timeouts is not None:
        parsed, kwargs = _with_timeouts(parsed, timeouts, kwargs)
    try:
        engine = create_engine(parsed, hide_parameters=True, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(f"unsupported database URL {url!r}: {exc}", code="bad_database_url") from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, sqlite_synchronous)
    if engine.dialect.name == "postgresql" and timeouts is not None and timeouts.statement:
        # The server's statement_timeout fires first when it can; this one when it cannot answer at all.
        RoundTripWatchdog(timeouts.statement + 2.0).attach(engine)
    return engine


def _with_timeouts(parsed: URL, timeouts: Timeouts, kwargs: dict[str, Any]) -> tuple[URL, dict[str, Any]]:
    """The URL and engine options that carry `timeouts` to libpq, keeping any `options` the URL has."""
    query = dict(parsed.query)
    if timeouts.connect:
        query["connect_timeout"] = str(max(1, round(timeouts.connect)))
    if timeouts.statement:
        options = query.get("options", "")
        options = options if isinstance(options, str) else " ".join(options)
        query["options"] = f"{options} -c statement_timeout={round(timeouts.statement * 1000)}".strip()
    if timeouts.pool:
        kwargs = {"pool_timeout": timeouts.pool, **kwargs}
    return parsed.set(query=query), kwargs


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous not in ("FULL", "NORMAL"):
        raise StoreError(f"sqlite synchronous must be FULL or NORMAL, not {synchronous!r}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (SQLAlchemy's
        # documented recipe), so that writers can take the write lock up front with BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")  # erased data is overwritten, not left in free pages
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("begin_immediate", False) else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the store's write lock from its first statement to its commit.

    On SQLite this is `BEGIN IMMEDIATE` (no lock upgrade, so no SQLITE_BUSY deadlock between processes);
    on PostgreSQL a transaction-scoped advisory lock, so that concurrent workers resolve identities one
    at a time and never create two people for one id.
    """
    with _locked_transaction(engine, PG_WRITE_LOCK) as conn:
        yield conn


@contextmanager
def trial_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction that is always rolled back: to try what writes would do (a rule's replay)
    without doing it. It holds the write lock, as `write_transaction` does."""
    with _sqlite_writer_lock(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["begin_immediate"] = True
        trial = conn.begin()
        try:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")
            yield conn
        finally:
            trial.rollback()


@contextmanager
def _locked_transaction(engine: Engine, pg_lock: int) -> Iterator[Connection]:
    with _sqlite_writer_lock(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["begin_immediate"] = True
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({pg_lock})")
            yield conn


_LOCK_FILES: dict[str, int] = {}
_LOCK_FILES_GUARD = threading.Lock()


@contextmanager
def _sqlite_writer_lock(engine: Engine) -> Iterator[None]:
    """Writers of one SQLite file, across processes, queue on an exclusive `flock` of a file beside it.

    SQLite alone would make a waiting writer poll (sleeping 1, 2, 5, 10... ms between tries); the kernel
    wakes a `flock` waiter the moment the lock is free, which keeps several workers' latency low.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    path = os.path.abspath(database) + ".writer-lock"
    with _LOCK_FILES_GUARD:
        if path not in _LOCK_FILES:
            try:
                _LOCK_FILES[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:  # no such folder, read-only: SQLite itself will say what is wrong
                descriptor = None
            else:
                descriptor = _LOCK_FILES[path]
        else:
            descriptor = _LOCK_FILES[path]
    if descriptor is None:
        yield
        return
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415 (alembic loads only when the schema changes)

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration. Safe to call from many processes at once.

    A database already at the newest revision is told by one query, without loading alembic (a tenth of a
    second, and every command opens the store)."""
    if _revision(engine) == newest_revision():
        return
    from alembic import command  # noqa: PLC0415 (see above)

    with _locked_transaction(engine, PG_MIGRATE_LOCK) as conn:
        command.upgrade(alembic_config(conn), "head")


def newest_revision() -> str:
    """The newest migration's revision. Migrations are numbered in order and named after their number
    (`0008_people_generation.py` is revision 0008); a test checks that alembic agrees."""
    return max(path.name.split("_", 1)[0] for path in (_MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def _revision(engine: Engine) -> str | None:
    """The database's revision; None before its first migration (or when it cannot be read: migrating
    then says why)."""
    try:
        with engine.connect() as conn:
            found = conn.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
    return str(found) if found is not None else None
