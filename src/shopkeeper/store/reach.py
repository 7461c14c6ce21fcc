"""What an audience's reach is measured against: the people known, the people active, the revenue, who
may be contacted for a purpose, and each person's unit (for the holdout). Arrays of person ids come back
sorted, so that callers can intersect them.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection, func, select

from shopkeeper.store.audiences import active_people, known_people, person_ids
from shopkeeper.store.interactions import PURCHASE
from shopkeeper.store.schema import identities, interactions, people, traits

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
    query = select(interactions.c.person_id).where(
        interactions.c.kind == PURCHASE, interactions.c.at >= since
    )
    return person_ids(conn, query.distinct())


def revenue(conn: Connection) -> tuple[Ids, npt.NDArray[np.float64]]:
    """Each person's revenue (the `revenue` trait, net of refunds), for those with one: (ids, amounts)."""
    query = select(traits.c.person_id, traits.c.value).where(
        traits.c.key == "revenue", traits.c.source == "observed"
    )
    found: dict[int, float] = {}
    for person, value in conn.execute(query):
        amount = orjson.loads(value)
        if isinstance(amount, int | float) and not isinstance(amount, bool) and np.isfinite(amount):
            found[int(person)] = float(amount)
    ids = np.array(sorted(found), dtype=np.int64)
    return ids, np.array([found[int(p)] for p in ids], dtype=np.float64)


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
