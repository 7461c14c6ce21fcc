"""Storage chosen by URL: SQLite (WAL) by default, PostgreSQL when the shop grows."""

from __future__ import annotations

import importlib
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from shopkeeper.errors import NotFound, StoreError
from shopkeeper.store.engine import Timeouts, make_engine, migrate
from shopkeeper.store.event_log import SqlEventLog
from shopkeeper.store.identity import PersonSummary, SqlIdentityGraph
from shopkeeper.store.keys import SqlKeyStore
from shopkeeper.store.schema import people
from shopkeeper.store.traits import SqlTraits

if TYPE_CHECKING:  # each loads with its first use: a command that needs three interfaces loads three
    from shopkeeper.store.catalog import SqlCatalog
    from shopkeeper.store.decision_log import SqlDecisionLog
    from shopkeeper.store.evaluations import SqlEvaluations
    from shopkeeper.store.experiments import SqlExperiments
    from shopkeeper.store.interactions import SqlInteractions
    from shopkeeper.store.models import SqlModelRegistry
    from shopkeeper.store.moments import SqlMoments
    from shopkeeper.store.outbox import SqlOutbox
    from shopkeeper.store.personas import SqlPersonas
    from shopkeeper.store.privacy import SqlPrivacy
    from shopkeeper.store.serving import SqlServing
    from shopkeeper.store.templates import SqlTemplates
    from shopkeeper.store.users import SqlUsers

_LAZY_NAMES = {"SqlCatalog": "catalog", "SqlDecisionLog": "decision_log", "SqlServing": "serving"}

__all__ = [
    "SqlCatalog",
    "SqlDecisionLog",
    "SqlEventLog",
    "SqlIdentityGraph",
    "SqlKeyStore",
    "SqlServing",
    "Store",
]


class Store:
    """The database, seen through focused interfaces: `events`, `identities`, `keys`, `catalog`,
    `traits`, `interactions`, `models`, `experiments`, `privacy`, `decisions` (the decision log's writes),
    `serving` (what decide reads), `templates`, `moments` (wishes, rules, the engine's reads), `outbox`
    (messages, attempts, tasks), `personas` (runs, personas, members), `evaluations` (offline evaluations
    of the recommender) and `users` (the dashboard's)."""

    def __init__(self, engine: Engine, *, key_cache_seconds: float = 5.0) -> None:
        self.engine = engine
        self.events = SqlEventLog(engine)
        self.identities = SqlIdentityGraph(engine)
        self.keys = SqlKeyStore(engine, cache_seconds=key_cache_seconds)
        self.traits = SqlTraits(engine)

    # The others hold nothing but the engine; each is made (and its module loaded) on first use. Two
    # threads that race on a first use make two alike, and one is kept.

    @cached_property
    def catalog(self) -> SqlCatalog:
        from shopkeeper.store.catalog import SqlCatalog  # noqa: PLC0415

        return SqlCatalog(self.engine)

    @cached_property
    def interactions(self) -> SqlInteractions:
        from shopkeeper.store.interactions import SqlInteractions  # noqa: PLC0415

        return SqlInteractions(self.engine)

    @cached_property
    def models(self) -> SqlModelRegistry:
        from shopkeeper.store.models import SqlModelRegistry  # noqa: PLC0415

        return SqlModelRegistry(self.engine)

    @cached_property
    def experiments(self) -> SqlExperiments:
        from shopkeeper.store.experiments import SqlExperiments  # noqa: PLC0415

        return SqlExperiments(self.engine)

    @cached_property
    def personas(self) -> SqlPersonas:
        from shopkeeper.store.personas import SqlPersonas  # noqa: PLC0415

        return SqlPersonas(self.engine)

    @cached_property
    def privacy(self) -> SqlPrivacy:
        from shopkeeper.store.privacy import SqlPrivacy  # noqa: PLC0415

        return SqlPrivacy(self.engine)

    @cached_property
    def decisions(self) -> SqlDecisionLog:
        from shopkeeper.store.decision_log import SqlDecisionLog  # noqa: PLC0415

        return SqlDecisionLog(self.engine)

    @cached_property
    def serving(self) -> SqlServing:
        from shopkeeper.store.serving import SqlServing  # noqa: PLC0415

        return SqlServing(self.engine)

    @cached_property
    def templates(self) -> SqlTemplates:
        from shopkeeper.store.templates import SqlTemplates  # noqa: PLC0415

        return SqlTemplates(self.engine)

    @cached_property
    def moments(self) -> SqlMoments:
        from shopkeeper.store.moments import SqlMoments  # noqa: PLC0415

        return SqlMoments(self.engine)

    @cached_property
    def outbox(self) -> SqlOutbox:
        from shopkeeper.store.outbox import SqlOutbox  # noqa: PLC0415

        return SqlOutbox(self.engine)

    @cached_property
    def evaluations(self) -> SqlEvaluations:
        from shopkeeper.store.evaluations import SqlEvaluations  # noqa: PLC0415

        return SqlEvaluations(self.engine)

    @cached_property
    def users(self) -> SqlUsers:
        from shopkeeper.store.users import SqlUsers  # noqa: PLC0415

        return SqlUsers(self.engine)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        key_cache_seconds: float = 5.0,
        upgrade: bool = True,
        timeouts: Timeouts | None = None,
    ) -> Store:
        """Open the database at `url` and bring its schema up to date.

        `timeouts` bound every PostgreSQL round trip of the store's engine (a server's), but not the
        migration, which runs on an engine of its own with the connect timeout only.
        """
        engine = make_engine(url, sqlite_synchronous=sqlite_synchronous, timeouts=timeouts)
        if upgrade:
            migrating = engine
            if timeouts is not None and engine.dialect.name == "postgresql":
                migrating = make_engine(url, timeouts=Timeouts(connect=timeouts.connect))
            try:
                migrate(migrating)
            except OperationalError as exc:
                engine.dispose()
                raise StoreError(f"cannot open the database: {_first_line(exc)}") from exc
            finally:
                if migrating is not engine:
                    migrating.dispose()
        return cls(engine, key_cache_seconds=key_cache_seconds)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                conn.execute(people.select().limit(1))
        except SQLAlchemyError as exc:
            raise StoreError(f"database unavailable: {_first_line(exc)}") from exc

    def person_summary(self, external_id: str) -> PersonSummary:
        """What is known about the person behind any of their external ids."""
        with self.engine.connect() as conn:
            person_id = self.identities.find_person(external_id, conn)
            if person_id is None:
                raise NotFound(f"no person is known by the id {external_id!r}", field="id")
            created_at = conn.scalar(
                people.select().with_only_columns(people.c.created_at).where(people.c.person_id == person_id)
            )
            assert isinstance(created_at, datetime)
            counts = self.events.counts_for_person(person_id, conn)
            first_seen, last_seen = self.events.span_for_person(person_id, conn)
            return PersonSummary(
                person_id=person_id,
                identities=self.identities.identities_of(person_id, conn),
                merges=self.identities.merges(person_id, conn),
                event_count=sum(counts.values()),
                event_counts=counts,
                first_seen=first_seen,
                last_seen=last_seen,
                created_at=created_at,
            )

    def sync(self) -> None:
        """Make every commit so far durable (power loss included). Only a store opened with SQLite's
        `synchronous=NORMAL` needs it: its commits survive a crash of the process but not of the machine,
        until a checkpoint, which syncs the log and then the database file."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")

    def close(self) -> None:
        self.engine.dispose()


def __getattr__(name: str) -> Any:
    """`SqlCatalog`, `SqlDecisionLog` and `SqlServing`, still importable from here, loaded when asked."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"shopkeeper.store.{module}"), name)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
