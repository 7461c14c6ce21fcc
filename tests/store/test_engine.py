"""Storage chosen by URL: migrations match the schema, SQLite runs in WAL, bad URLs fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from shopkeeper.errors import StoreError
from shopkeeper.store import Store
from shopkeeper.store.engine import alembic_config, newest_revision
from shopkeeper.store.schema import metadata


def test_migrations_produce_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_opening_twice_is_harmless(database_url: str) -> None:
    Store.open(database_url).close()
    again = Store.open(database_url)
    again.ping()
    again.close()


def test_sqlite_runs_in_wal_with_full_sync_by_default(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    store.close()


def test_sqlite_normal_sync_is_a_setting(sqlite_url: str) -> None:
    store = Store.open(sqlite_url, sqlite_synchronous="NORMAL")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1
    store.close()


def test_sync_copies_a_normal_sync_store_s_log_into_the_database(tmp_path: Path) -> None:
    """A bulk command's store (synchronous=NORMAL) is made durable by `sync`: a full checkpoint, after
    which the database file itself holds the commits (before it, they are only in the log)."""
    path = tmp_path / "bulk.db"
    store = Store.open(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    store.sync()
    before = path.stat().st_size
    with store.engine.begin() as conn:  # about 400 KB: under the automatic checkpoint's 1,000 pages
        conn.execute(text("CREATE TABLE probe (blob TEXT)"))
        conn.execute(text("INSERT INTO probe VALUES (:blob)"), [{"blob": "x" * 4000}] * 100)
    assert path.stat().st_size == before  # committed, but in the log only
    store.sync()
    assert path.stat().st_size >= before + 400_000
    store.close()


def test_sync_is_harmless_on_every_backend(store: Store) -> None:
    store.sync()
    store.ping()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_a_bad_url_is_a_clear_store_error(url: str) -> None:
    with pytest.raises(StoreError, match="URL"):
        Store.open(url)


def test_an_unreachable_database_is_a_clear_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the database"):
        Store.open(f"sqlite:///{tmp_path / 'missing-dir' / 'shop.db'}")


def test_the_newest_revision_read_from_file_names_is_alembic_s_head() -> None:
    """Regression: opening an up-to-date store skips alembic by comparing with `newest_revision`."""
    assert newest_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_store_one_migration_behind_is_brought_up_to_date(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "-1")
        assert MigrationContext.configure(conn).get_current_revision() != newest_revision()
    store.close()
    again = Store.open(sqlite_url)
    with again.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == newest_revision()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    again.close()
