"""Offline evaluations kept in the database: each run of `shopkeeper evaluate` on the shop's own
purchases, so that the dashboard can chart the newest one (the model against its anchors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, insert, select

from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import evaluations


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: when it ran, and the command's JSON (`{"split": {...}, "results": [...]}`)."""

    id: int
    created_at: datetime
    report: dict[str, Any]


class SqlEvaluations:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, report: dict[str, Any], at: datetime | None = None) -> Evaluation:
        """Keep an evaluation's report (its split counts and every model's metrics; no person in it)."""
        when = at or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            key = conn.execute(
                insert(evaluations).values(created_at=when, report=orjson.dumps(report).decode())
            ).inserted_primary_key
        assert key is not None
        return Evaluation(int(key[0]), when, report)

    def latest(self) -> Evaluation | None:
        """The newest evaluation, if there was one."""
        with self._engine.connect() as conn:
            row = conn.execute(select(evaluations).order_by(evaluations.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return Evaluation(int(row.id), row.created_at, orjson.loads(row.report))
