"""The decisions table: every decision decide made, stored as an exposure for lift measurement.

Rows are written in batches by `shopkeeper.decide.log.DecisionLog`, in the background; this module is
only the write, and the rule that keeps it from outrunning an erasure.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, bindparam, insert, select

from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import decisions, people

_PEOPLE_THERE = select(people.c.person_id, people.c.created_at).where(
    people.c.person_id.in_(bindparam("people", expanding=True))
)


def store_decisions(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Store decisions whose person is still there (an unknown visitor's always), under the write lock
    that an erasure takes: none lands after its person's erasure. Returns how many were stored."""
    with write_transaction(engine) as conn:
        wanted = {row["person_id"] for row in rows if row["person_id"] is not None}
        made = dict(conn.execute(_PEOPLE_THERE, {"people": list(wanted)}).all()) if wanted else {}
        kept = [
            row
            for row in rows
            if row["person_id"] is None or (row["person_id"] in made and made[row["person_id"]] <= row["at"])
        ]
        if kept:
            conn.execute(insert(decisions), kept)
    return len(kept)


class SqlDecisionLog:
    """The decisions table, as the decision log writes it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def store(self, rows: list[dict[str, Any]]) -> int:
        """`store_decisions` on this store's engine."""
        return store_decisions(self._engine, rows)
