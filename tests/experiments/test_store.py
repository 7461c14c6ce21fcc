"""The holdout and experiments at decide time, on both backends: who gets what, and what is logged."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from shopkeeper import InvalidInput, NotFound, Shop
from shopkeeper.catalog import parse_items
from shopkeeper.decide.pipeline import Decider
from shopkeeper.decide.placements import DEFAULT_PLACEMENTS
from shopkeeper.errors import Conflict
from shopkeeper.experiments.assign import Holdout
from shopkeeper.experiments.service import ExperimentService, new_experiment
from shopkeeper.store.schema import decisions

ITEMS = [
    {"item_id": f"mug-{c}", "title": f"{c} mug", "category": "Kitchen > Mugs", "price": 2.5}
    for c in ("red", "blue", "green", "pink")
] + [
    {"item_id": f"bag-{c}", "title": f"{c} bag", "category": "Bags > Jumbo bags", "price": 2.0}
    for c in ("red", "blue", "green")
]
ORDERS = [
    ("ann", ["mug-red", "mug-blue", "bag-red"], 1),
    ("ann", ["mug-red", "bag-blue"], 8),
    ("bob", ["mug-red", "mug-green", "bag-green"], 2),
    ("cat", ["bag-red", "bag-blue", "mug-pink"], 3),
    ("dan", ["mug-green", "mug-pink", "bag-green"], 4),
]
HOLDOUT = Holdout()
IN_HOLDOUT = next(f"held-{i}" for i in range(1000) if HOLDOUT.contains(f"held-{i}"))
OUT_OF_HOLDOUT = ["ann", "bob", "cat", "dan"]
PLACEMENTS = DEFAULT_PLACEMENTS


def order(user: str, products: list[str], day: int, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"order-{n}",
        "timestamp": f"2011-05-{day:02d}T10:00:00Z",
        "properties": {
            "order_id": str(n),
            "revenue": 10.0,
            "products": [{"product_id": p} for p in products],
        },
    }


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    assert not any(HOLDOUT.contains(u) for u in OUT_OF_HOLDOUT)
    opened = Shop.open(database_url)
    opened.store.catalog.upsert(parse_items(ITEMS))
    opened.ingest(
        [order(user, products, day, n) for n, (user, products, day) in enumerate(ORDERS)]
        + [order(IN_HOLDOUT, ["mug-red", "mug-blue"], 5, 99)]
    )
    opened.train()
    yield opened
    opened.close()


def service(shop: Shop) -> ExperimentService:
    decider: Decider = shop._deciding()
    return decider.experiments


def logged(shop: Shop) -> list[Any]:
    shop._deciding().log.flush()
    with shop.store.engine.connect() as conn:
        return list(conn.execute(select(decisions).order_by(decisions.c.at)))


def test_the_holdout_share_over_20k_ids_is_within_tolerance_and_stable_across_processes(shop: Shop) -> None:
    ids = [f"visitor-{i}" for i in range(20_000)]
    experiments = service(shop)
    with shop.store.engine.connect() as conn:
        cohorts = [experiments.assign(conn, "web", None, None, i, consented=True).cohort for i in ids[:2000]]
    mask = HOLDOUT.mask(ids)
    assert cohorts == ["holdout" if m else "personalized" for m in mask[:2000]]
    # 5% of 20,000: the binomial sd is 0.15 points; 4 sd either side.
    assert abs(mask.mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / 20_000)
    assert (HOLDOUT.mask(ids) == mask).all()
    code = (
        "import sys; from shopkeeper.experiments.assign import Holdout; "
        "ids = [f'visitor-{i}' for i in range(20000)]; "
        "sys.stdout.write(''.join('1' if m else '0' for m in Holdout().mask(ids)))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other == "".join("1" if m else "0" for m in mask)


def test_a_held_out_person_gets_the_popular_baseline_with_a_plain_reason(shop: Shop) -> None:
    held = shop.decide(user_id=IN_HOLDOUT, n=3)
    assert held.cohort == "holdout" and not held.personalized
    assert held.reasons[0].provenance["cohort"] == "holdout"
    assert "comparison group" in held.reasons[0].text and "5% of people" in held.reasons[0].text
    # The same person by another channel's call is the same unit, so gets the same treatment.
    assert shop.decide(user_id=IN_HOLDOUT, placement="new_for_you").cohort == "holdout"
    personal = shop.decide(user_id="ann", n=3)
    assert personal.cohort == "personalized" and personal.personalized
    rows = logged(shop)
    assert [(r.unit, r.cohort, r.arm, r.experiment) for r in rows] == [
        (IN_HOLDOUT, "holdout", "holdout", None),
        (IN_HOLDOUT, "holdout", "holdout", None),
        ("ann", "personalized", "personalized", None),
    ]
    assert [r.propensity for r in rows] == pytest.approx([0.05, 0.05, 0.95])


def test_the_unit_is_the_first_user_id_whichever_id_the_call_uses(shop: Shop) -> None:
    shop.ingest([{"type": "page", "anonymousId": "cookie-1", "messageId": "p1", "name": "Home"}])
    shop.identify(user_id="zoe", anonymous_id="cookie-1")
    shop.identify(user_id="zoe-second-account", anonymous_id="cookie-1")
    shop.decide(anonymous_id="cookie-1")
    shop.decide(user_id="zoe")
    shop.decide(anonymous_id="never-seen")
    assert [r.unit for r in logged(shop)] == ["zoe", "zoe", "never-seen"]


def test_without_personalization_consent_the_arm_is_no_consent_and_the_baseline_is_served(shop: Shop) -> None:
    service(shop).create(new_experiment("t", "web", [("a", {}), ("b", {"n": 2})], placements=PLACEMENTS))
    shop.set_consent("bob", {"personalization": False})
    decision = shop.decide(user_id="bob", n=4)
    assert not decision.personalized and decision.arm == "no_consent" and len(decision.items) == 4
    [row] = logged(shop)
    assert (row.cohort, row.experiment, row.arm, row.propensity) == ("no_consent", "t", "no_consent", None)
    report = service(shop).report("t")
    assert report["people"] == 0 and report["excluded_no_consent"] == 1


def test_an_experiment_assigns_arms_by_weight_applies_their_options_and_logs_propensity(shop: Shop) -> None:
    experiments = service(shop)
    experiments.create(
        new_experiment(
            "picks",
            "web",
            [("personalized", {}), ("baseline", {"model": "popularity"}), ("small", {"n": 2})],
            weights=[2, 1, 1],
            placements=PLACEMENTS,
        )
    )
    seen: dict[str, Any] = {}
    for user in [*OUT_OF_HOLDOUT, *(f"v{i}" for i in range(40))]:
        decision = shop.decide(user_id=user, n=5)
        if HOLDOUT.contains(user):  # held out: in no experiment
            assert decision.experiment is None and decision.arm == "holdout"
            continue
        seen.setdefault(decision.arm or "", decision)
        assert decision.experiment == "picks"
        assert decision.reasons[-1].provenance["experiment"] == "picks"
    assert set(seen) == {"personalized", "baseline", "small"}
    assert len(seen["small"].items) == 2
    assert seen["baseline"].reasons[0].provenance["model"] == "popularity"
    assert not seen["baseline"].personalized
    shares = {"personalized": 0.5, "baseline": 0.25, "small": 0.25}
    for row in logged(shop):
        if row.cohort == "personalized":
            assert row.experiment == "picks" and row.propensity == pytest.approx(shares[row.arm])
    # Deterministic: the same person gets the same arm again.
    again = {u: shop.decide(user_id=u).arm for u in OUT_OF_HOLDOUT}
    assert again == {u: shop.decide(user_id=u).arm for u in OUT_OF_HOLDOUT}


def test_an_audience_limits_the_experiment_to_people_whose_trait_passes(shop: Shop) -> None:
    shop.identify(
        user_id="cat",
        traits={"favourite_categories": ["Kitchen > Mugs"]},
        context={"shopkeeper": {"stated": True}},
    )
    experiments = service(shop)
    experiments.create(
        new_experiment(
            "mugs",
            "web",
            [("a", {}), ("b", {})],
            audience={"trait": "favourite_categories", "contains": "Mugs"},
            placements=PLACEMENTS,
        )
    )
    assert shop.decide(user_id="cat").experiment == "mugs"
    assert shop.decide(user_id="dan").experiment is None
    assert shop.decide(anonymous_id="stranger").experiment is None
    reach = experiments.report("mugs")["reach"]
    assert (
        reach["covered"] == 1
        and reach["people"] >= 5
        and reach["share"] == pytest.approx(1 / reach["people"])
    )


def test_stopping_returns_everyone_to_the_default(shop: Shop) -> None:
    experiments = service(shop)
    experiments.create(new_experiment("s", "web", [("a", {}), ("b", {})], placements=PLACEMENTS))
    assert shop.decide(user_id="ann").experiment == "s"
    assert experiments.stop("s").status == "stopped"
    assert shop.decide(user_id="ann").experiment is None
    assert [e.status for e in experiments.experiments.list()] == ["stopped"]
    # A stopped experiment frees its placement; its name is never reused.
    experiments.create(new_experiment("s2", "web", [("a", {}), ("b", {})], placements=PLACEMENTS))
    with pytest.raises(Conflict, match="already exists"):
        experiments.create(new_experiment("s", "email", [("a", {}), ("b", {})], placements=PLACEMENTS))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"name": "holdout"}, "name", "reserved"),
        ({"name": "bad name!"}, "name", "letters"),
        ({"placement": "nowhere"}, "placement", "unknown placement"),
        ({"variants": [("a", {})]}, "variants", "at least two"),
        ({"variants": [("a", {}), ("a", {})]}, "variants", "must differ"),
        ({"variants": [("a", {}), ("b", {"colour": "red"})]}, "variants", "unknown option"),
        ({"variants": [("a", {}), ("b", {"n": 0})]}, "variants", "1 to 50"),
        ({"variants": [("a", {}), ("b", {"model": "magic"})]}, "variants", "model must be"),
        ({"variants": [("a", {}), ("b", {"repeats": "yes"})]}, "variants", "true or false"),
        ({"weights": [1.0]}, "weights", "one weight per variant"),
        ({"weights": [1.0, -1.0]}, "weights", "positive"),
        ({"audience": {"trait": "order_count"}}, "audience", "one test"),
        ({"audience": {"trait": "order_count", "gte": "two"}}, "audience", "number"),
        ({"audience": ["x"]}, "audience", "JSON object"),
        ({"window_days": 0}, "window_days", "1 to 365"),
        ({"floor": 0.9}, "floor", "floor"),
    ],
)
def test_every_mistake_in_a_new_experiment_is_named(kwargs: dict[str, Any], field: str, words: str) -> None:
    arguments: dict[str, Any] = {"name": "x", "placement": "web", "variants": [("a", {}), ("b", {})]}
    arguments.update(kwargs)
    with pytest.raises(InvalidInput, match=words) as caught:
        new_experiment(
            arguments.pop("name"),
            arguments.pop("placement"),
            arguments.pop("variants"),
            placements=PLACEMENTS,
            **arguments,
        )
    assert caught.value.field == field


def test_one_running_experiment_per_placement_and_unknown_names(shop: Shop) -> None:
    experiments = service(shop)
    experiments.create(new_experiment("one", "web", [("a", {}), ("b", {})], placements=PLACEMENTS))
    with pytest.raises(Conflict, match="already runs experiment 'one'") as caught:
        experiments.create(new_experiment("two", "web", [("a", {}), ("b", {})], placements=PLACEMENTS))
    assert caught.value.code == "conflict"
    with pytest.raises(NotFound):
        experiments.report("nope")
    with pytest.raises(NotFound):
        experiments.stop("nope")
    with pytest.raises(InvalidInput, match="SHOPKEEPER_HOLDOUT_SHARE"):
        experiments.stop("holdout")


def test_a_bandit_logs_each_choice_with_its_thompson_propensity(shop: Shop) -> None:
    experiments = service(shop)
    experiments.create(
        new_experiment(
            "ts",
            "web",
            [("a", {}), ("b", {"n": 3}), ("c", {"max_per_category": 1})],
            bandit=True,
            floor=0.1,
            placements=PLACEMENTS,
        )
    )
    shares = experiments.bandit_propensities(experiments.experiments.get("ts"))
    assert shares.sum() == pytest.approx(1.0) and shares.min() >= 0.1
    users = [f"b{i}" for i in range(60) if not HOLDOUT.contains(f"b{i}")]
    arms = {user: shop.decide(anonymous_id=user).arm for user in users}
    rows = [r for r in logged(shop) if r.experiment == "ts"]
    assert len(rows) == len(users) and {r.arm for r in rows} == {"a", "b", "c"}
    for row in rows:
        assert row.arm == arms[row.unit]
        assert row.propensity == pytest.approx(shares[["a", "b", "c"].index(row.arm)])
