"""Who is in an audience: a parsed condition evaluated over the store, one query per leaf, sets in numpy.

Every leaf but a trait is one SQL query (`shopkeeper.store.audiences`); a trait leaf reads the unexpired
values of its trait and picks each person's winner here, by `profiles.traits.resolve`'s rule, matched as
experiments match. `all` intersects,
`any` unites, and `not` takes its condition's people from everyone known (or from the people asked
about). The people found so far narrow the rest: within an `all`, once few people remain, the next leaves
ask about those people only (an indexed probe per person), which is also how `contains` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection

from shopkeeper.personas.conditions import GROUPS, kind_of, trait_matches
from shopkeeper.privacy.consent import NECESSARY
from shopkeeper.profiles.traits import SOURCES, fresh_since, rank_of
from shopkeeper.store import Store
from shopkeeper.store import audiences as sql

Ids = npt.NDArray[np.int64]
# Up to this many people, a leaf's query names them (`person_id IN (...)`); beyond, it reads everyone and
# the result is intersected in numpy (one scan beats thousands of probes, and stays under SQLite's limit
# on bound parameters).
NAMED_LIMIT = 500
_EMPTY: Ids = np.empty(0, np.int64)


class AudienceMembers:
    """Evaluates parsed conditions (`personas.conditions.parse_condition`) over a store.

    `consent_default` is the shop's `SHOPKEEPER_CONSENT_DEFAULT` (`opt_out`: a purpose nobody chose counts
    as granted; `opt_in`: as not granted). `now` gives the time windows' end (tests fix it)."""

    def __init__(
        self,
        store: Store,
        *,
        consent_default: str = "opt_out",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._default_granted = consent_default == "opt_out"
        self._now = now or (lambda: datetime.now(UTC))

    def members(
        self,
        condition: dict[str, Any],
        *,
        only: Sequence[int] | None = None,
        conn: Connection | None = None,
    ) -> Ids:
        """The sorted, distinct live person ids that meet `condition` (among `only`, when given)."""
        if conn is None:
            with self._store.engine.connect() as own:
                return self.members(condition, only=only, conn=own)
        scope = None if only is None else np.unique(np.asarray(only, np.int64))
        if scope is not None and not len(scope):
            return _EMPTY
        return _Evaluation(conn, self._now(), self._default_granted).run(condition, scope)

    def each(self, conditions: Sequence[dict[str, Any]], conn: Connection) -> list[Ids]:
        """`members` of each condition, in one evaluation: everyone known is read once for them all."""
        evaluation = _Evaluation(conn, self._now(), self._default_granted)
        return [evaluation.run(condition, None) for condition in conditions]

    def contains(self, condition: dict[str, Any], person_id: int, conn: Connection | None = None) -> bool:
        """Whether one person meets `condition` (the same evaluation, asked about them alone)."""
        return bool(len(self.members(condition, only=[person_id], conn=conn)))

    def count(self, condition: dict[str, Any], conn: Connection | None = None) -> int:
        """How many live people meet `condition`."""
        return len(self.members(condition, conn=conn))


class _Evaluation:
    """One evaluation: a connection, one `now` for every window, and the set of known people once read."""

    def __init__(self, conn: Connection, now: datetime, default_granted: bool) -> None:
        self.conn = conn
        self.now = now
        self.default_granted = default_granted
        self._known: Ids | None = None

    def run(self, condition: dict[str, Any], scope: Ids | None) -> Ids:
        """The people of `scope` (None: everyone) who meet `condition`."""
        kind = kind_of(condition)
        if kind == "all":
            found = scope
            for child in condition["all"]:
                found = self.run(child, found)
                if not len(found):
                    break
            assert found is not None
            return found
        if kind == "any":
            united = _EMPTY
            for child in condition["any"]:
                rest = None if scope is None else np.setdiff1d(scope, united, assume_unique=True)
                if rest is not None and not len(rest):
                    break
                united = np.union1d(united, self.run(child, rest))
            return united
        if kind == "not":
            return np.setdiff1d(self.everyone(scope), self.run(condition["not"], scope), assume_unique=True)
        assert kind not in GROUPS
        return self.leaf(kind, condition, scope)

    def everyone(self, scope: Ids | None) -> Ids:
        """The live people of `scope` (None: everyone known)."""
        if scope is not None and len(scope) <= NAMED_LIMIT:
            return sql.person_ids(self.conn, sql.known_people(scope.tolist()))
        if self._known is None:
            self._known = sql.person_ids(self.conn, sql.known_people())
        return self._known if scope is None else np.intersect1d(self._known, scope, assume_unique=True)

    def leaf(self, kind: str, leaf: dict[str, Any], scope: Ids | None) -> Ids:
        named = scope is not None and len(scope) <= NAMED_LIMIT
        only = scope.tolist() if named and scope is not None else None
        if kind == "trait":
            found = self.trait(leaf, only)
        elif kind == "consent":
            found = self.consent(leaf, scope, only)
        else:
            found = sql.person_ids(self.conn, self.statement(kind, leaf, only))
        if scope is None or named:  # named: the query asked about those people only
            return found
        return np.intersect1d(found, scope, assume_unique=True)

    def consent(self, leaf: dict[str, Any], scope: Ids | None, only: list[int] | None) -> Ids:
        """Who chose `granted` last; and, when that is the shop's default, everyone else who never chose.
        `necessary` is always granted and cannot be withdrawn."""
        purpose, granted = leaf["consent"], leaf["granted"]
        if purpose == NECESSARY:
            return self.everyone(scope) if granted else _EMPTY
        if granted != self.default_granted:
            return sql.person_ids(self.conn, sql.consent_choices(purpose, granted=granted, only=only))
        other = sql.person_ids(self.conn, sql.consent_choices(purpose, granted=not granted, only=only))
        return np.setdiff1d(self.everyone(scope), other, assume_unique=True)

    def trait(self, leaf: dict[str, Any], only: list[int] | None) -> Ids:
        """Who has the trait's winning value (`profiles.traits.resolve`: the strongest source that has
        not expired; one row per source) and it meets the leaf. Expiry is a bound in the query, and each
        distinct value is decoded and matched once."""
        key, source = leaf["trait"], leaf.get("source")
        sources = SOURCES if source is None else (source,)
        fresh = {s: fresh_since(key, s, self.now) for s in sources}
        winners: dict[int, tuple[int, str]] = {}
        for person, its_source, value in sql.trait_values(self.conn, key, fresh, only):
            rank = rank_of(its_source)
            if person not in winners or rank < winners[person][0]:
                winners[person] = (rank, value)
        verdicts: dict[str, bool] = {}
        found = []
        for person, (_rank, value) in winners.items():
            verdict = verdicts.get(value)
            if verdict is None:
                verdict = verdicts[value] = trait_matches(leaf, orjson.loads(value))
            if verdict:
                found.append(person)
        return np.unique(np.asarray(found, np.int64))

    def statement(self, kind: str, leaf: dict[str, Any], only: list[int] | None) -> Any:
        """The one query of an SQL leaf."""
        since = self.since(leaf)
        if kind == "event":
            at_least, at_most = leaf["at_least"], leaf.get("at_most")
            return sql.event_people(leaf["event"], at_least=at_least, at_most=at_most, since=since, only=only)
        if kind == "purchased":
            test = sql.PurchaseTest(
                category=None if leaf["purchased"] is True else leaf["purchased"],
                item=leaf.get("item"),
                since=since,
                at_least=leaf["at_least"],
                spend_gte=leaf.get("spend_gte"),
                spend_lte=leaf.get("spend_lte"),
            )
            return sql.purchase_people(test, only)
        if kind == "persona":
            return sql.persona_people(leaf["persona"], only)
        if kind == "wish":
            return sql.wish_people(None if leaf["wish"] is True else leaf["wish"], leaf["status"], only)
        if kind == "moment":
            rule = None if leaf["moment"] is True else leaf["moment"]
            return sql.moment_people(rule, leaf["status"], since, only)
        raise ValueError(f"not a leaf kind: {kind!r}")

    def since(self, leaf: dict[str, Any]) -> datetime | None:
        days = leaf.get("within_days")
        return None if days is None else self.now - timedelta(days=days)
