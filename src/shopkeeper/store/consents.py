"""The consent ledger in the database: append-only, the newest entry per (person, purpose) is the choice.

Entries made by anyone merged into a person count as theirs (a cookie banner answered while anonymous).
What a choice means, and the defaults for a purpose with no entry, are `shopkeeper.privacy.consent`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, select

from shopkeeper.store.identity import person_and_merged
from shopkeeper.store.schema import consents


class ConsentEntry(NamedTuple):
    """One entry of the ledger."""

    purpose: str
    granted: bool
    at: datetime
    channel: str
    actor: str
    message_id: str | None


# The newest entries of some purposes, built once: decide asks for them on every call.
_GRANTED = (
    select(consents.c.purpose, consents.c.granted)
    .where(
        consents.c.person_id.in_(person_and_merged(bindparam("person"))),
        consents.c.purpose.in_(bindparam("purposes", expanding=True)),
    )
    .order_by(consents.c.id)
)


class SqlConsents:
    """Reads and appends ledger entries, on the caller's connection (decide's read, a write transaction)."""

    @staticmethod
    def newest(conn: Connection, person_id: int) -> dict[str, ConsentEntry]:
        """The newest entry of every purpose the person (or anyone merged into them) ever chose."""
        newest = (
            select(func.max(consents.c.id))
            .where(consents.c.person_id.in_(person_and_merged(person_id)))
            .group_by(consents.c.purpose)
        )
        rows = conn.execute(select(consents).where(consents.c.id.in_(newest)))
        return {r.purpose: _entry(r) for r in rows}

    @staticmethod
    def granted(conn: Connection, person_id: int, purposes: Sequence[str]) -> dict[str, bool]:
        """Whether the newest entry of each of these purposes grants it; a purpose with none is left out.
        (One indexed query.)"""
        found: dict[str, bool] = {}
        for purpose, granted in conn.execute(_GRANTED, {"person": person_id, "purposes": list(purposes)}):
            found[purpose] = bool(granted)  # oldest first: the newest entry per purpose wins
        return found

    @staticmethod
    def append(
        conn: Connection,
        person_id: int,
        changes: Mapping[str, bool],
        *,
        at: datetime,
        channel: str,
        actor: str,
        message_id: str | None = None,
    ) -> int:
        """Append these choices, inside the caller's write transaction. Returns how many were written."""
        rows: list[dict[str, Any]] = [
            {
                "person_id": person_id,
                "purpose": purpose,
                "granted": int(granted),
                "at": at,
                "channel": channel,
                "actor": actor[:64],
                "message_id": message_id,
            }
            for purpose, granted in changes.items()
        ]
        if rows:
            conn.execute(consents.insert(), rows)
        return len(rows)

    @staticmethod
    def history(conn: Connection, person_ids: Sequence[int]) -> list[ConsentEntry]:
        """Every entry of these people (a person and those merged into them), oldest first."""
        rows = conn.execute(
            select(consents).where(consents.c.person_id.in_(list(person_ids))).order_by(consents.c.id)
        )
        return [_entry(r) for r in rows]


def _entry(row: Any) -> ConsentEntry:
    return ConsentEntry(row.purpose, bool(row.granted), row.at, row.channel, row.actor, row.message_id)
