"""Experiments in the database: their definitions, and the exposures and outcomes a report reads.

Reads are shaped for speed: one grouped query over the decisions (each unit's first exposure per arm),
one query over the outcome events, and numpy from there on (`shopkeeper.experiments.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, and_, case, func, insert, select, update

from shopkeeper.errors import Conflict, NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.event_log import ORDER_COMPLETED, stored_revenue
from shopkeeper.store.schema import decisions, events, experiments, identities, people, traits
from shopkeeper.store.traits import TraitRecord, to_record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_CHUNK = 500


@dataclass(frozen=True)
class Variant:
    """One arm: its name and the options it changes (`model`, `n`, `max_per_category`, `repeats`)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options}


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored. The first variant is the control."""

    name: str
    placement: str
    kind: str  # ab | bandit
    status: str  # running | stopped
    variants: tuple[Variant, ...]
    weights: tuple[float, ...]
    audience: dict[str, Any] | None
    outcome_events: tuple[str, ...]
    window_days: int
    floor: float
    salt: str
    created_at: datetime
    stopped_at: datetime | None = None

    @property
    def arms(self) -> list[str]:
        return [v.name for v in self.variants]

    @property
    def shares(self) -> list[float]:
        total = sum(self.weights)
        return [w / total for w in self.weights]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "placement": self.placement,
            "kind": self.kind,
            "status": self.status,
            "variants": [v.to_json() for v in self.variants],
            "weights": list(self.weights),
            "audience": self.audience,
            "outcome_events": list(self.outcome_events),
            "window_days": self.window_days,
            "floor": self.floor,
            "created_at": self.created_at.isoformat(),
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
        }


@dataclass(frozen=True)
class Exposures:
    """Each exposed person once, at their first exposure: arm index, time (epoch s), person, propensity.

    `person` is -1 for a visitor the store never came to know (they can have no outcomes).
    """

    arm: npt.NDArray[np.int64]
    first_at: npt.NDArray[np.float64]
    person: npt.NDArray[np.int64]
    propensity: npt.NDArray[np.float64]
    excluded: int  # people seen only without personalization consent


@dataclass(frozen=True)
class Outcomes:
    """Outcome events of exposed people: person, time (epoch s), which kind, and revenue for orders.

    `kind` is 0 for "Order Completed" and 1 + i for the i-th named event.
    """

    person: npt.NDArray[np.int64]
    at: npt.NDArray[np.float64]
    kind: npt.NDArray[np.int64]
    revenue: npt.NDArray[np.float64]


def _from_row(row: Any) -> Experiment:
    return Experiment(
        name=row.name,
        placement=row.placement,
        kind=row.kind,
        status=row.status,
        variants=tuple(Variant(v["name"], v["options"]) for v in orjson.loads(row.variants)),
        weights=tuple(float(w) for w in orjson.loads(row.weights)),
        audience=orjson.loads(row.audience) if row.audience is not None else None,
        outcome_events=tuple(orjson.loads(row.outcome_events)),
        window_days=int(row.window_days),
        floor=float(row.floor),
        salt=row.salt,
        created_at=row.created_at,
        stopped_at=row.stopped_at,
    )


class SqlExperiments:
    """Create, read, list and stop experiments, and read the exposures and outcomes their reports count."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, experiment: Experiment) -> Experiment:
        # The write lock: two creates at once cannot both find the name free or the placement idle.
        with write_transaction(self._engine) as conn:
            if conn.scalar(select(experiments.c.name).where(experiments.c.name == experiment.name)):
                raise Conflict(
                    f"an experiment named {experiment.name!r} already exists; names are never reused",
                    field="name",
                )
            busy = conn.scalar(
                select(experiments.c.name).where(
                    experiments.c.placement == experiment.placement, experiments.c.status == "running"
                )
            )
            if busy is not None:
                raise Conflict(
                    f"placement {experiment.placement!r} already runs experiment {busy!r}; stop it first",
                    field="placement",
                )
            conn.execute(
                insert(experiments).values(
                    name=experiment.name,
                    placement=experiment.placement,
                    kind=experiment.kind,
                    status=experiment.status,
                    variants=orjson.dumps([v.to_json() for v in experiment.variants]).decode(),
                    weights=orjson.dumps(list(experiment.weights)).decode(),
                    audience=None
                    if experiment.audience is None
                    else orjson.dumps(experiment.audience).decode(),
                    outcome_events=orjson.dumps(list(experiment.outcome_events)).decode(),
                    window_days=experiment.window_days,
                    floor=experiment.floor,
                    salt=experiment.salt,
                    created_at=experiment.created_at,
                    stopped_at=experiment.stopped_at,
                )
            )
        return experiment

    def get(self, name: str) -> Experiment:
        with self._engine.connect() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            raise NotFound(f"no experiment named {name!r}", field="name")
        return _from_row(row)

    def list(self, *, status: str | None = None) -> list[Experiment]:
        query = select(experiments).order_by(experiments.c.created_at, experiments.c.name)
        if status is not None:
            query = query.where(experiments.c.status == status)
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def stop(self, name: str, at: datetime | None = None) -> Experiment:
        """Stop a running experiment (stopping a stopped one changes nothing)."""
        found = self.get(name)
        if found.status == "stopped":
            return found
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(experiments)
                .where(experiments.c.name == name)
                .values(status="stopped", stopped_at=at or datetime.now(UTC))
            )
        return self.get(name)

    def exposures(
        self, arms: Sequence[str], *, experiment: str | None = None, cohort: bool = False
    ) -> Exposures:
        """First exposures per person for an experiment's arms, or (cohort=True) the universal cohorts.

        A person is keyed by their person id (after merges) when known, else by the unit they came with,
        and counted once, in the arm of their earliest exposure. One grouped query, which a covering index
        answers in index order; the rest is numpy.
        """
        import numpy as np  # noqa: PLC0415 (numpy loads for a report, not with every store: issue 13, item 10)

        label = decisions.c.cohort if cohort else decisions.c.arm
        where = decisions.c.cohort.is_not(None) if cohort else decisions.c.experiment == experiment
        query = (
            select(
                decisions.c.unit,
                func.max(decisions.c.person_id),
                label,
                _epoch_seconds(self._engine, func.min(decisions.c.at)),
                func.min(decisions.c.propensity),
            )
            .where(where)
            .group_by(*((label, decisions.c.unit) if cohort else (decisions.c.unit, label)))  # index order
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            empty = np.zeros(0)
            return Exposures(empty.astype(np.int64), empty, empty.astype(np.int64), empty, 0)
        units, persons, labels, stamps, propensities = zip(*rows, strict=True)
        index = {name: i for i, name in enumerate(arms)}
        arm = np.fromiter((index.get(a, -1) for a in labels), np.int64, len(rows))
        person = np.fromiter((-1 if p is None else p for p in persons), np.int64, len(rows))
        unknown = np.flatnonzero(person < 0)
        if unknown.size:  # visitors the store came to know after their decision
            late = self._persons_of_units([units[i] for i in unknown if units[i] is not None])
            for i in unknown:
                person[i] = late.get(units[i], -1)
        merged = self._merged()
        if merged:
            person = np.fromiter((merged.get(p, p) for p in person.tolist()), np.int64, len(rows))
        # The key: the person when known, else a distinct negative number per unit.
        key = person.copy()
        strangers = np.flatnonzero(person < 0)
        if strangers.size:
            names = {u: -2 - n for n, u in enumerate(dict.fromkeys(units[i] for i in strangers))}
            key[strangers] = [names[units[i]] for i in strangers]
        at = np.asarray(stamps, np.float64)
        propensity = np.fromiter((0.0 if p is None else p for p in propensities), np.float64, len(rows))
        valid = arm >= 0
        order = np.lexsort((at[valid], key[valid]))
        chosen = np.flatnonzero(valid)[order]
        first = chosen[np.unique(key[chosen], return_index=True)[1]]
        excluded = np.setdiff1d(np.unique(key[~valid]), key[first]).size
        return Exposures(
            arm=arm[first],
            first_at=at[first],
            person=person[first],
            propensity=propensity[first],
            excluded=int(excluded),
        )

    def decisions_per_day(self, experiment: str, arms: Sequence[str]) -> Sequence[tuple[date, str, int]]:
        """How many decisions each of these arms of the experiment got on each day (UTC): a bandit's
        traffic over time. Decisions without consent carry the experiment but no arm of it, so they are
        left out. One grouped query over the experiment's index range."""
        day = func.date(decisions.c.at)
        query = (
            select(day, decisions.c.arm, func.count())
            .where(decisions.c.experiment == experiment, decisions.c.arm.in_(list(arms)))
            .group_by(day, decisions.c.arm)
            .order_by(day, decisions.c.arm)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(d if isinstance(d, date) else date.fromisoformat(str(d)), arm, int(n)) for d, arm, n in rows]

    def outcomes(self, since: datetime, until: datetime, named: Sequence[str]) -> Outcomes:
        """Orders and named events between `since` and `until`, with people resolved through merges."""
        import numpy as np  # noqa: PLC0415 (numpy loads for a report, not with every store)

        names = [ORDER_COMPLETED, *[n for n in named if n != ORDER_COMPLETED]]
        kinds = {name: i for i, name in enumerate(names)}
        stamp = _epoch_seconds(self._engine, events.c.timestamp)
        # Revenue is kept at append; only a row written before it was kept has its payload read.
        unkept = case((and_(events.c.event == ORDER_COMPLETED, events.c.revenue.is_(None)), events.c.payload))
        query = select(events.c.person_id, stamp, events.c.event, events.c.revenue, unkept).where(
            and_(
                events.c.type == "track",
                events.c.event.in_(names),
                events.c.timestamp >= since,
                events.c.timestamp < until,
            )
        )
        merged = self._merged()
        person: list[int] = []
        at: list[float] = []
        kind: list[int] = []
        revenue: list[float] = []
        with self._engine.connect() as conn:
            for pid, seconds, name, kept, payload in conn.execute(query):
                pid = int(pid)
                person.append(merged.get(pid, pid))
                at.append(float(seconds))
                k = kinds[name]
                kind.append(k)
                revenue.append(0.0 if k else float(kept) if payload is None else stored_revenue(payload))
        return Outcomes(
            person=np.asarray(person, np.int64),
            at=np.asarray(at, np.float64),
            kind=np.asarray(kind, np.int64),
            revenue=np.asarray(revenue, np.float64),
        )

    def audience_traits(self, key: str | None) -> tuple[int, dict[int, Sequence[TraitRecord]]]:
        """How many known people (not merged away) there are, and every stored row of the trait `key`
        (an audience rule's), by person; None: the count alone."""
        with self._engine.connect() as conn:
            known = int(conn.scalar(select(func.count()).where(people.c.merged_into.is_(None))) or 0)
            if key is None:
                return known, {}
            rows = conn.execute(select(traits).where(traits.c.key == key)).all()
        return known, _by_person(rows)

    def _merged(self) -> dict[int, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(people.c.person_id, people.c.merged_into).where(people.c.merged_into.is_not(None))
            ).all()
        return {int(a): int(b) for a, b in rows}

    def _persons_of_units(self, units: Sequence[str]) -> dict[str, int]:
        """The person now known by each of these external ids (a visitor who came back known)."""
        found: dict[str, int] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(units), _CHUNK):
                chunk = list(units[start : start + _CHUNK])
                for value, person in conn.execute(
                    select(identities.c.value, identities.c.person_id).where(identities.c.value.in_(chunk))
                ):
                    found.setdefault(value, int(person))
        return found


def _by_person(rows: Sequence[Any]) -> dict[int, Sequence[TraitRecord]]:
    records: dict[int, list[TraitRecord]] = {}
    for row in rows:
        records.setdefault(int(row.person_id), []).append(to_record(row))
    return dict(records)


def _epoch_seconds(engine: Engine, column: Any) -> Any:
    """A SQL expression for a UtcDateTime column as seconds since 1970 (a float), on either backend:
    reading floats skips parsing a datetime per row."""
    if engine.dialect.name == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.extract("epoch", column)
