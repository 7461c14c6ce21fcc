"""Experiments in the store, on SQLite and PostgreSQL: definitions, each person's first exposure, their
outcomes, and an audience's trait rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from shopkeeper.errors import Conflict, NotFound
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.experiments import Experiment, Variant
from shopkeeper.store.schema import decisions
from shopkeeper.store.traits import TraitRecord

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def experiment(name: str, placement: str = "web") -> Experiment:
    return Experiment(
        name=name,
        placement=placement,
        kind="ab",
        status="running",
        variants=(Variant("control"), Variant("treatment", {"n": 3})),
        weights=(1.0, 3.0),
        audience={"trait": "size", "equals": "M"},
        outcome_events=("Signed Up",),
        window_days=14,
        floor=0.05,
        salt=f"experiment:{name}",
        created_at=T0,
    )


def test_definitions_are_created_read_listed_and_stopped(store: Store) -> None:
    experiments = store.experiments
    created = experiments.create(experiment("one"))
    assert experiments.get("one") == created
    with pytest.raises(Conflict, match="already runs"):
        experiments.create(experiment("two"))  # one running experiment per placement
    experiments.create(experiment("two", placement="email"))
    assert [e.name for e in experiments.list(status="running")] == ["one", "two"]
    stopped = experiments.stop("one", at=T0 + timedelta(days=1))
    assert (stopped.status, stopped.stopped_at) == ("stopped", T0 + timedelta(days=1))
    assert experiments.stop("one") == stopped
    assert [e.name for e in experiments.list(status="running")] == ["two"]
    assert [e.name for e in experiments.list()] == ["one", "two"]
    with pytest.raises(Conflict, match="never reused"):
        experiments.create(experiment("one"))
    with pytest.raises(NotFound):
        experiments.get("three")


def shown(
    person_id: int | None, unit: str, arm: str, hours: int, *, propensity: float = 0.25
) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": person_id,
        "external_id": unit,
        "placement": "web",
        "model_version": None,
        "personalized": 1,
        "items": "[]",
        "reasons": "[]",
        "at": T0 + timedelta(hours=hours),
        "unit": unit,
        "cohort": "personalized" if arm != "no_consent" else "no_consent",
        "experiment": "one",
        "arm": arm,
        "propensity": propensity,
    }


def order(user: str, n: int, hours: int, revenue: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"{user}-order-{n}",
        "timestamp": (T0 + timedelta(hours=hours)).isoformat(),
        "properties": {"revenue": revenue}
        if revenue is not None
        else {"products": [{"price": 2.5, "quantity": 2}]},
    }


def test_each_person_counts_once_at_their_first_exposure_with_their_outcomes(store: Store) -> None:
    ingest = Ingestor(store, record_consent=consent_recorder()).ingest
    ingest(
        [
            {"type": "identify", "userId": "ann", "messageId": "a"},
            {"type": "identify", "userId": "bob", "messageId": "b"},
        ]
    )
    ann, bob = store.identities.find_person("ann"), store.identities.find_person("bob")
    assert ann is not None and bob is not None
    with write_transaction(store.engine) as conn:
        conn.execute(
            insert(decisions),
            [
                shown(ann, "ann", "treatment", 2),
                shown(ann, "ann", "control", 1),  # ann's first exposure: control
                shown(bob, "bob", "no_consent", 1),  # bob is only seen without consent: excluded
                shown(None, "anon-7", "treatment", 3),  # a visitor who later signs in as cat
                shown(None, "anon-8", "treatment", 4),  # a visitor never known
            ],
        )
    ingest([{"type": "identify", "userId": "cat", "anonymousId": "anon-7", "messageId": "c"}])
    cat = store.identities.find_person("cat")
    ingest([order("ann", 1, 5, 10.0), order("cat", 1, 6, None), order("cat", 2, 100 * 24, 99.0)])
    ingest(
        [
            {
                "type": "track",
                "userId": "ann",
                "event": "Signed Up",
                "messageId": "s",
                "timestamp": T0.isoformat(),
            }
        ]
    )

    exposures = store.experiments.exposures(["control", "treatment"], experiment="one")
    first = sorted(
        zip(
            exposures.person.tolist(),
            exposures.arm.tolist(),
            exposures.first_at.round(3).tolist(),
            strict=True,
        )
    )
    assert first[0] == (-1, 1, (T0 + timedelta(hours=4)).timestamp())
    assert first[1:] == sorted(
        [(ann, 0, (T0 + timedelta(hours=1)).timestamp()), (cat, 1, (T0 + timedelta(hours=3)).timestamp())]
    )
    assert exposures.propensity.tolist() == [0.25, 0.25, 0.25] and exposures.excluded == 1
    nobody = store.experiments.exposures(["control"], experiment="none")
    assert nobody.arm.size == 0 and nobody.excluded == 0

    outcomes = store.experiments.outcomes(T0, T0 + timedelta(days=14), ["Signed Up"])
    found = sorted(
        zip(outcomes.person.tolist(), outcomes.kind.tolist(), outcomes.revenue.tolist(), strict=True)
    )
    assert found == sorted([(ann, 0, 10.0), (ann, 1, 0.0), (cat, 0, 5.0)])  # cat's second order is too late
    assert outcomes.at.min() == pytest.approx(T0.timestamp())


def test_an_audiences_trait_rows_and_the_people_known(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [{"type": "identify", "userId": u, "messageId": u} for u in ("ann", "bob", "cat")]
    )
    ann = store.identities.find_person("ann")
    assert ann is not None
    size = TraitRecord(key="size", value="M", source="inferred", updated_at=T0, evidence={})
    with write_transaction(store.engine) as conn:
        store.traits.write_inferred(conn, ann, [size])
    assert store.experiments.audience_traits(None) == (3, {})
    known, rows = store.experiments.audience_traits("size")
    assert (known, {p: [(r.key, r.value) for r in rs] for p, rs in rows.items()}) == (
        3,
        {ann: [("size", "M")]},
    )
    assert store.experiments.audience_traits("colour") == (3, {})
