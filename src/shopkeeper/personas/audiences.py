"""Saved audiences, their reach, and the reach guard: who a condition covers, how much of the shop that is,
who of them may be contacted, and an honest word when it is too narrow to matter or to measure.

Reach, for a condition:
- `size`: the live people it covers now;
- `known`, `active`, `revenue`: its share of all known people, of the active ones (an event, a visit or an
  order, in the last `ACTIVE_DAYS` days) and of the shop's revenue (the `revenue` trait);
- `reachable`: by purpose, the people who consented to it (with the shop's default), less the holdout.

The guard warns when an audience holds less than `warn_share` of the active people: how many it leaves
out, and the smallest lift an experiment on it could detect at its traffic (80% power, 5% two-sided). Under
`K_ANONYMITY` people, per-person outcomes are never reported for it.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from shopkeeper.errors import Conflict, InvalidInput, NotFound
from shopkeeper.experiments.assign import Holdout
from shopkeeper.experiments.power import cohens_h, normal_power
from shopkeeper.experiments.service import K_ANONYMITY
from shopkeeper.personas.conditions import describe, parse_condition, storable
from shopkeeper.personas.members import AudienceMembers
from shopkeeper.privacy.consent import Purposes
from shopkeeper.store import Store, reach
from shopkeeper.store.audiences import SqlAudiences
from shopkeeper.wording import counted

ACTIVE_DAYS = 90
BUYING_DAYS = 30  # the conversion rate the smallest detectable lift starts from
WARN_SHARE = 0.10
REACH_PURPOSES = ("personalization", "email_marketing", "staff_outreach")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CACHE_SECONDS = 5.0
Ids = npt.NDArray[np.int64]


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"audience name {str(name)[:80]!r}: use 1-64 letters, digits, '_', '.' or '-'", field="name"
        )
    return name


@dataclass(frozen=True)
class Base:
    """What every audience's reach is measured against, read once per reach."""

    known: Ids
    active: Ids
    buyers: Ids  # bought in the last BUYING_DAYS days
    revenue_ids: Ids
    revenue: npt.NDArray[np.float64]


class AudienceService:
    """Create, read, delete audiences; their reach and guard; membership for targeting."""

    def __init__(
        self,
        store: Store,
        purposes: Purposes,
        holdout: Holdout,
        *,
        warn_share: float = WARN_SHARE,
        now: Callable[[], datetime] | None = None,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        # Rebuilds the profiles whose events changed, before a count over everyone reads their traits
        # (an import leaves them to be built on first read).
        self._refresh = refresh or (lambda: None)
        self._purposes = purposes
        self._holdout = holdout
        self._warn_share = warn_share
        self._now = now or (lambda: datetime.now(UTC))
        self.members = AudienceMembers(
            store, consent_default="opt_out" if purposes.default_granted else "opt_in", now=self._now
        )
        self.saved = SqlAudiences(store.engine)
        self._lock = threading.Lock()
        self._conditions: dict[str, tuple[float, dict[str, Any]]] = {}

    # ---- managing ------------------------------------------------------------------------------

    def put(
        self, name: str, where: Any, description: Any = None, *, base: Base | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace an audience; returns it with its reach (against `base` when given, see
        `reach_of`), and whether it is new."""
        check_name(name)
        condition = parse_condition(where, field="where")
        if description is not None and (
            not isinstance(description, str) or len(description) > 500 or not storable(description)
        ):
            raise InvalidInput(
                "a description is text of at most 500 characters, without control characters",
                field="description",
            )
        _, created = self.saved.put(name, condition, description, self._now())
        with self._lock:
            self._conditions.pop(name, None)
        return self.show(name, base=base), created

    def show(self, name: str, *, base: Base | None = None) -> dict[str, Any]:
        row = self.saved.get(check_name(name))
        return _audience_json(row) | {"reach": self.reach_of(row.condition, name=name, base=base)}

    def list(self) -> list[dict[str, Any]]:
        self._refresh()
        found = []
        for row in self.saved.list():
            found.append(_audience_json(row) | {"size": self.members.count(row.condition)})
        return found

    def delete(self, name: str) -> bool:
        """Delete an audience that nothing targets (a running experiment or a moment rule that names it
        must be changed or stopped first: Conflict)."""
        self.saved.get(check_name(name))
        users = self.targeted_by().get(name, [])
        if users:
            raise Conflict(
                f"{name} is still targeted by {', '.join(users)}; stop or change them first", field="name"
            )
        deleted = self.saved.delete(name)
        with self._lock:
            self._conditions.pop(name, None)
        return deleted

    def targeted_by(self) -> dict[str, builtins.list[str]]:
        """What targets each saved audience by name: running experiments and moment rules."""
        found: dict[str, list[str]] = {}
        for experiment in self._store.experiments.list(status="running"):
            name = (experiment.audience or {}).get("audience")
            if isinstance(name, str):
                found.setdefault(name, []).append(f"experiment {experiment.name}")
        for rule, (body, _origin, _at) in self._store.moments.rules().items():
            if isinstance(body, dict) and isinstance(body.get("audience"), str):
                found.setdefault(body["audience"], []).append(f"moment rule {rule}")
        return found

    def reach(self, name: str) -> dict[str, Any]:
        return self.reach_of(self.saved.get(check_name(name)).condition, name=name)

    # ---- targeting: experiments, moment rules, placements ------------------------------------------

    def target(self, raw: Any, *, field: str = "audience") -> dict[str, Any] | None:
        """What a targeting field says, checked: a saved audience's name (`{"audience": NAME}`) or a
        condition written in place. None: everyone."""
        if raw is None:
            return None
        if isinstance(raw, str):
            self.saved.get(check_name(raw))
            return {"audience": raw}
        if isinstance(raw, dict) and set(raw) == {"audience"}:
            return self.target(raw["audience"], field=field)
        return parse_condition(raw, field=field)

    def condition_of(self, target: dict[str, Any]) -> dict[str, Any]:
        """The condition a target stands for (a saved audience's is re-read at most every 5 s)."""
        name = target.get("audience")
        if not isinstance(name, str):
            return target
        with self._lock:
            cached = self._conditions.get(name)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
        condition = self.saved.get(name).condition
        with self._lock:
            self._conditions[name] = (time.monotonic(), condition)
        return condition

    def contains(self, conn: Connection | None, target: dict[str, Any] | None, person_id: int | None) -> bool:
        """Whether the person is in the target (everyone is in None; an unknown visitor in no audience)."""
        if target is None:
            return True
        if person_id is None:
            return False
        try:
            condition = self.condition_of(target)
        except NotFound:  # a saved audience deleted since it was targeted holds nobody
            return False
        return self.members.contains(condition, person_id, conn=conn)

    def target_reach(self, target: dict[str, Any] | None) -> dict[str, Any]:
        """The reach of a target, for reports (everyone: the whole shop)."""
        if target is None:
            with self._store.engine.connect() as conn:
                known = int(reach.known(conn).size)
            return {"people": known, "covered": known, "share": 1.0 if known else None}
        name = target.get("audience")
        try:
            condition = self.condition_of(target)
        except NotFound:  # deleted since: it holds nobody now
            with self._store.engine.connect() as conn:
                known = int(reach.known(conn).size)
            return {"audience": name, "people": known, "covered": 0, "share": 0.0 if known else None} | {
                "deleted": True
            }
        return self.reach_of(condition, name=name if isinstance(name, str) else None)

    # ---- reach ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring every profile up to date (see `refresh` in the constructor)."""
        self._refresh()

    def base(self) -> Base:
        now = self._now()
        with self._store.engine.connect() as conn:
            revenue_ids, revenue = reach.revenue(conn)
            return Base(
                known=reach.known(conn),
                active=reach.active_since(conn, now - timedelta(days=ACTIVE_DAYS)),
                buyers=reach.buyers_since(conn, now - timedelta(days=BUYING_DAYS)),
                revenue_ids=revenue_ids,
                revenue=revenue,
            )

    def reach_of(
        self, condition: dict[str, Any], *, name: str | None = None, base: Base | None = None
    ) -> dict[str, Any]:
        """The reach of a condition, and the guard's word on it (see the module docstring). `base`: what
        it is measured against, when the caller keeps one (`base()`), else read now."""
        self._refresh()
        ids = self.members.members(condition)
        base = base or self.base()
        size = int(ids.size)
        active = np.intersect1d(ids, base.active, assume_unique=True)
        inside = np.isin(base.revenue_ids, ids, assume_unique=True)
        total_revenue = float(np.clip(base.revenue, 0, None).sum())
        revenue = float(np.clip(base.revenue[inside], 0, None).sum())
        reachable, held_out = self._reachable(ids)
        found: dict[str, Any] = {
            "audience": name,
            "size": size,
            "people": int(base.known.size),  # the figures experiments' reports have always shown
            "covered": size,
            "share": _share(size, base.known.size),
            "known": {"people": int(base.known.size), "share": _share(size, base.known.size)},
            "active": {
                "people": int(active.size),
                "of": int(base.active.size),
                "share": _share(active.size, base.active.size),
                "days": ACTIVE_DAYS,
            },
            "revenue": {"amount": round(revenue, 2), "share": _share(revenue, total_revenue)},
            "reachable": reachable,
            "holdout": {"people": held_out},
        }
        found["guard"] = self._guard(ids, active, base, reachable["personalization"]["people"], name)
        return found

    def _reachable(self, ids: Ids) -> tuple[dict[str, dict[str, Any]], int]:
        """Per purpose, who of these people may be contacted (the audience language's `consent` leaf:
        their newest choice, else the shop's default) and are not in the holdout; and how many are in
        the holdout."""
        with self._store.engine.connect() as conn:
            units = reach.units(conn, ids)
            asked = [parse_condition({"consent": purpose}) for purpose in REACH_PURPOSES]
            consented = dict(zip(REACH_PURPOSES, self.members.each(asked, conn), strict=True))
        unit_ids = [units.get(int(p), f"person:{int(p)}") for p in ids.tolist()]
        held = self._holdout.mask(unit_ids) if unit_ids else np.zeros(0, dtype=bool)
        found = {}
        for purpose, allowed in consented.items():
            people = int((np.isin(ids, allowed, assume_unique=True) & ~held).sum()) if ids.size else 0
            found[purpose] = {"people": people, "share": _share(people, ids.size)}
        return found, int(held.sum())

    def _guard(self, ids: Ids, active: Ids, base: Base, reachable: int, name: str | None) -> dict[str, Any]:
        share = _share(active.size, base.active.size)
        narrow = share is not None and share < self._warn_share
        rate = _share(np.intersect1d(active, base.buyers, assume_unique=True).size, active.size)
        if not rate:
            rate = _share(np.intersect1d(base.active, base.buyers, assume_unique=True).size, base.active.size)
        per_arm = max(min(reachable, int(active.size)) // 2, 0)
        lift = smallest_lift(rate or 0.0, per_arm)
        warnings = []
        left_out = int(base.active.size - active.size)
        if narrow:
            detect = (
                f"an experiment on it could detect only a lift of {lift:.0%} or more"
                if lift is not None
                else "an experiment on it could not detect any lift"
            )
            warnings.append(
                f"Narrow: it holds {share:.1%} of active customers "
                f"({int(active.size):,} of {int(base.active.size):,}), so "
                f"{counted(left_out, 'active customer')} {'is' if left_out == 1 else 'are'} left out, and "
                f"at today's traffic {detect}. Compare it with the broad base: "
                f"`shopkeeper audiences compare {name or 'NAME'}`."
            )
        if ids.size < K_ANONYMITY:
            warnings.append(
                f"Fewer than {K_ANONYMITY} people: outcomes per person are not reported for this audience."
            )
        return {
            "narrow": narrow,
            "threshold": self._warn_share,
            "left_out": left_out,
            "conversion_rate": None if rate is None else round(rate, 4),
            "min_detectable_lift": None if lift is None else round(lift, 4),
            "k_anonymous": bool(ids.size >= K_ANONYMITY),
            "warnings": warnings,
        }


def smallest_lift(rate: float, per_arm: int, *, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest relative lift on a conversion rate that an even split of `per_arm` people a side
    detects with this power (two-sided); None when none up to +1000% would be."""
    if per_arm < 2 or not 0 < rate < 1:
        return None
    low, high = 0.0, 10.0
    top = min(rate * (1 + high), 0.999999)
    if normal_power(cohens_h(top, rate), per_arm, alpha) < power:
        return None
    for _ in range(60):
        middle = (low + high) / 2
        treated = min(rate * (1 + middle), 0.999999)
        if normal_power(cohens_h(treated, rate), per_arm, alpha) >= power:
            high = middle
        else:
            low = middle
    return high


def _share(part: float, whole: float) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _audience_json(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "where": row.condition,
        "summary": describe(row.condition),
        "description": row.description,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
