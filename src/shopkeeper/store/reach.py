"""What an audience's reach is measured against: the people known, the people active, the revenue, who
may be contacted for a purpose, and each person's unit (for the holdout). Arrays of person ids come back
sorted, so that callers can intersect them.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection, func, select

from shopkeeper.store.audiences import active_people, buying_people, known_people, person_ids
from shopkeeper.store.schema import identities, people, traits

Ids = npt.NDArray[np.int64]
_UNIT_KINDS = ("user_id", "anonymous_id")


def known(conn: Connection) -> Ids:
    """Every live person (not merged into another)."""
    return person_ids(conn, known_people())


def active_since(conn: Connection, since: datetime) -> Ids:
    """Everyone with an event (a visit, a view, an order) since `since`."""
    return person_ids(conn, active_people(since))


def buyers_since(conn: Connection, since: datetime) -> Ids:
    """Everyone who bought something since `since`."""
    return person_ids(conn, buying_people(since))


def revenue(conn: Connection) -> tuple[Ids, npt.NDArray[np.float64]]:
    """Each person's revenue (the `revenue` trait, net of refunds), for those with one: (ids, amounts),
    sorted by id."""
    query = select(traits.c.person_id, traits.c.value).where(
        traits.c.key == "revenue", traits.c.source == "observed"
    )
    rows = conn.execute(query).all()
    ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
    amounts = np.fromiter((_amount(row[1]) for row in rows), np.float64, len(rows))
    kept = np.isfinite(amounts)
    order = np.argsort(ids[kept], kind="stable")
    return ids[kept][order], amounts[kept][order]


def _amount(value: str) -> float:
    """A stored amount (JSON); NaN when it is not a finite number."""
    amount = orjson.loads(value)
    return float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else math.nan


def units(conn: Connection, person_ids: Ids) -> dict[int, str]:
    """Each person's experiment unit: their first userId, else their first anonymousId (theirs or of
    anyone merged into them)."""
    owner = func.coalesce(people.c.merged_into, identities.c.person_id)
    query = (
        select(owner, identities.c.kind, identities.c.value)
        .select_from(identities.join(people, people.c.person_id == identities.c.person_id))
        .where(identities.c.kind.in_(_UNIT_KINDS))
        .order_by(identities.c.id)
    )
    wanted = set(person_ids.tolist())
    first: dict[int, dict[str, str]] = {}
    for person, kind, value in conn.execute(query):
        if int(person) in wanted:
            first.setdefault(int(person), {}).setdefault(kind, value)
    return {p: ids.get("user_id") or ids["anonymous_id"] for p, ids in first.items()}
