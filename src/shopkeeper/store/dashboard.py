"""The dashboard's counts: people, events and decisions per day, and what the outbox did, by status and
reason. Each is one grouped query over an indexed time range, so a page stays fast on a large shop."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from shopkeeper.store.schema import decisions, events, outbox, people


def _day(value: Any) -> date:
    """SQLite gives the day as text, PostgreSQL as a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class SqlDashboard:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def people(self) -> int:
        """Live people: everyone not merged into someone else (the erased are gone)."""
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(people).where(people.c.merged_into.is_(None))
                ).scalar_one()
            )

    def events_per_day(self, since: datetime) -> dict[date, int]:
        day = func.date(events.c.timestamp)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(day, func.count()).where(events.c.timestamp >= since).group_by(day)
            ).all()
        return {_day(d): int(n) for d, n in rows}

    def decisions_per_day(self, since: datetime) -> dict[date, tuple[int, int]]:
        """Per day: (personalized, baseline) decisions."""
        day = func.date(decisions.c.at)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(day, decisions.c.personalized, func.count())
                .where(decisions.c.at >= since)
                .group_by(day, decisions.c.personalized)
            ).all()
        found: dict[date, tuple[int, int]] = {}
        for d, personalized, n in rows:
            mine, base = found.get(_day(d), (0, 0))
            found[_day(d)] = (mine + int(n), base) if personalized else (mine, base + int(n))
        return found

    def outbox_since(self, since: datetime) -> list[tuple[str, str, str | None, int]]:
        """(channel, status, reason, count) for the moments made since `since`."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.status, outbox.c.reason, func.count())
                .where(outbox.c.created_at >= since)
                .group_by(outbox.c.channel, outbox.c.status, outbox.c.reason)
            ).all()
        return [(channel, status, reason, int(n)) for channel, status, reason, n in rows]
