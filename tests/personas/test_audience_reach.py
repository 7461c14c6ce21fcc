"""An audience's reach and the reach guard, with known answers; and audiences as targets: experiments
(broad vs narrow included), moment rules and decide's placements, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize
from tests.personas.persona_shop import build

from shopkeeper.errors import Conflict, InvalidInput, NotFound
from shopkeeper.experiments.service import new_experiment
from shopkeeper.personas.audiences import smallest_lift
from shopkeeper.personas.compare import compare
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

PLACEMENTS = {"web": None, "email": None}


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with Shop.from_settings(Settings(database_url=database_url, holdout_share=0)) as opened:
        yield opened


def test_reach_counts_known_active_revenue_and_reachable(shop: Shop) -> None:
    people = build(shop)
    shop.set_consent(people["regular"][0], {"email_marketing": False})
    found, created = shop.audiences.put("party", {"purchased": "Party", "within_days": 90})
    assert created and found["summary"] == "bought Party in the last 90 days"
    reach = found["reach"]
    assert reach["size"] == 12  # the regulars
    assert reach["known"] == {"people": 45, "share": round(12 / 45, 4)}
    # Active: an event in the last 90 days (regulars, big spenders, newbies, browsers; not the lapsed).
    assert reach["active"]["of"] == 33 and reach["active"]["people"] == 12
    total = 12 * 6 * 40 + 6 * 4 * 400 + 10 * 15 + 12 * 20
    assert reach["revenue"]["share"] == round(12 * 6 * 40 / total, 4)
    assert reach["reachable"]["email_marketing"]["people"] == 11  # one said no
    assert reach["reachable"]["personalization"]["people"] == 12
    assert reach["holdout"] == {"people": 0}
    assert reach["guard"]["narrow"] is False and reach["guard"]["k_anonymous"] is True
    assert shop.audiences.reach("party") == shop.audiences.show("party")["reach"]


def test_the_holdout_is_not_reachable(database_url: str) -> None:
    with Shop.from_settings(Settings(database_url=database_url, holdout_share=0.5)) as shop:
        build(shop)
        found, _ = shop.audiences.put("everyone", {"not": {"trait": "nothing", "equals": 1}})
        reach = found["reach"]
        held = reach["holdout"]["people"]
        assert reach["size"] == 45 and 5 < held < 40  # a 50% hash split of 45 people
        assert reach["reachable"]["personalization"]["people"] == 45 - held


def test_the_guard_warns_on_a_narrow_audience_and_refuses_per_person_outcomes_under_ten(shop: Shop) -> None:
    people = build(shop)
    found, _ = shop.audiences.put("big", {"trait": "revenue", "gte": 1000})
    guard = found["reach"]["guard"]
    assert found["reach"]["size"] == 6
    assert guard["narrow"] is False  # 6 of 33 active is 18%, above the 10% line
    assert guard["k_anonymous"] is False
    assert any("Fewer than 10 people" in w for w in guard["warnings"])
    found, _ = shop.audiences.put("one", {"event": "Product Viewed", "within_days": 7})
    assert found["reach"]["size"] == 5
    shop.audiences.put("tiny", {"all": [{"purchased": "Candles"}, {"trait": "order_count", "gte": 4}]})
    with Shop.from_settings(shop.settings.model_copy(update={"audience_warn_share": 0.5})) as strict:
        guard = strict.audiences.reach("big")["guard"]
        assert guard["narrow"] is True and guard["left_out"] == 33 - 6
        assert "27 active customers are left out" in guard["warnings"][0]
    assert people


def test_the_smallest_detectable_lift_agrees_with_statsmodels() -> None:
    for rate, per_arm in ((0.05, 2000), (0.2, 300), (0.5, 50)):
        lift = smallest_lift(rate, per_arm)
        assert lift is not None
        effect = proportion_effectsize(rate * (1 + lift), rate)
        power = NormalIndPower().power(effect, nobs1=per_arm, alpha=0.05, ratio=1.0)
        assert power == pytest.approx(0.8, abs=0.002)
    assert smallest_lift(0.0, 1000) is None and smallest_lift(0.1, 1) is None
    assert smallest_lift(0.01, 3) is None  # not even +1000% is detectable


def test_experiments_target_a_saved_audience_and_compare_broad_with_narrow(shop: Shop) -> None:
    people = build(shop)
    shop.audiences.put("regulars", {"purchased": "Party"})
    with pytest.raises(NotFound):
        shop.audiences.target("nobody")
    experiment = new_experiment(
        "party-test",
        "web",
        [("a", {}), ("b", {})],
        placements=PLACEMENTS,
        audience="regulars",
        targeting=shop.audiences,
    )
    assert experiment.audience == {"audience": "regulars"}
    shop.experiments.create(experiment)
    arms = {}
    for user in people["regular"] + people["newbie"]:
        person = shop.privacy.find(user)
        arms[user] = shop.experiments.assign(None, "web", person, user, None, consented=True, unit=user).arm
    assert {arms[u] for u in people["regular"]} <= {"a", "b"}
    assert {arms[u] for u in people["newbie"]} == {"personalized"}
    with pytest.raises(Conflict):
        shop.audiences.delete("regulars")
    shop.experiments.stop("party-test")
    started = compare(shop.audiences, shop.experiments, PLACEMENTS, "regulars")
    assert started["started"] and started["verdict"] == "not proven yet"
    assert started["narrow"]["size"] == 12 and started["broad"]["size"] == 45 - 12
    again = compare(shop.audiences, shop.experiments, PLACEMENTS, "regulars")
    assert not again["started"] and again["experiment"] == "compare-regulars"
    assigned = {}
    for user in people["regular"] + people["newbie"] + people["lapsed"] + people["browser"]:
        person = shop.privacy.find(user)
        assigned[user] = shop.experiments.assign(None, "web", person, user, None, consented=True, unit=user)
    assert {assigned[u].arm for u in people["regular"]} == {"narrow"}
    others = [assigned[u] for u in people["newbie"] + people["lapsed"] + people["browser"]]
    broad = [a for a in others if a.arm == "broad"]
    assert broad and all(a.propensity == pytest.approx(12 / 33, abs=1e-4) for a in broad)
    assert {a.arm for a in others} <= {"broad", "personalized"}
    shop.audiences.put("few", {"trait": "revenue", "gte": 1000})
    with pytest.raises(InvalidInput) as few:
        compare(shop.audiences, shop.experiments, PLACEMENTS, "few")
    assert "fewer than 10" in few.value.message


def test_moment_rules_target_audiences(shop: Shop) -> None:
    build(shop)
    rule = {"trigger": "milestone", "channels": ["staff"], "params": {"orders": [7]}, "audience": "nobody"}
    with pytest.raises(InvalidInput) as unknown:
        shop.moments.put_rule("vip-note", rule, origin="test")
    assert unknown.value.field == "audience"
    shop.audiences.put("big", {"trait": "revenue", "gte": 1000})
    saved = shop.moments.put_rule("vip-note", rule | {"audience": "big"}, origin="test")
    assert saved["audience"] == "big"
    with pytest.raises(Conflict) as used:
        shop.audiences.delete("big")
    assert "moment rule vip-note" in used.value.message
    where = {"all": [{"purchased": "Party"}, {"event": "Order Completed", "at_least": 2}]}
    saved = shop.moments.put_rule("party-note", rule | {"audience": None, "where": where}, origin="test")
    assert saved["where"]["all"][1]["at_least"] == 2
    with pytest.raises(InvalidInput) as bad:
        shop.moments.put_rule("bad", rule | {"audience": None, "where": {"all": [{"event": 3}]}}, origin="t")
    assert bad.value.field == "where.all[0].event"


def test_an_experiment_on_fewer_than_ten_people_reports_no_outcomes(shop: Shop) -> None:
    people = build(shop)
    shop.audiences.put("big", {"trait": "revenue", "gte": 1000})  # the 6 big spenders
    experiment = new_experiment(
        "tiny", "web", [("a", {}), ("b", {})], placements=PLACEMENTS, audience="big", targeting=shop.audiences
    )
    shop.experiments.create(experiment)
    for user in people["bigspender"]:
        shop.decide(user_id=user, placement="web")
    shop.close_decisions()
    report = shop.experiments.report("tiny")
    assert report["reach"]["size"] == 6 and not report["trustworthy"]
    assert sum(arm["people"] for arm in report["arms"]) == 6
    assert all(arm["revenue"] is None and arm["metrics"] == [] for arm in report["arms"])
    assert "k-anonymity" in report["summary"][0]


def test_long_audience_names_get_their_own_comparison(shop: Shop) -> None:
    build(shop)
    first, second = "a" * 60 + "-one", "a" * 60 + "-two"
    for name in (first, second):
        shop.audiences.put(name, {"purchased": "Party"})
    one = compare(shop.audiences, shop.experiments, PLACEMENTS, first)
    shop.experiments.stop(one["experiment"])
    two = compare(shop.audiences, shop.experiments, PLACEMENTS, second, placement="email")
    assert one["experiment"] != two["experiment"] and two["started"]
    assert len(two["experiment"]) <= 64


def test_a_deleted_audience_holds_nobody_and_breaks_no_report(shop: Shop) -> None:
    people = build(shop)
    shop.audiences.put("gone", {"purchased": "Party"})
    experiment = new_experiment(
        "was-targeted",
        "web",
        [("a", {}), ("b", {})],
        placements=PLACEMENTS,
        audience="gone",
        targeting=shop.audiences,
    )
    shop.experiments.create(experiment)
    shop.experiments.stop("was-targeted")
    assert shop.audiences.delete("gone")
    report = shop.experiments.report("was-targeted")
    assert report["reach"]["deleted"] is True and report["reach"]["covered"] == 0
    person = shop.privacy.find(people["regular"][0])
    assert not shop.audiences.contains(None, {"audience": "gone"}, person)


def test_control_characters_are_refused_before_anything_is_saved(shop: Shop) -> None:
    for where, field in (
        ({"event": "a\u0000"}, "where.event"),
        ({"trait": "x", "equals": "nul\u0000"}, "where.equals"),
        ({"purchased": "Party\u0007"}, "where.purchased"),
    ):
        with pytest.raises(InvalidInput) as bad:
            shop.audiences.put("nul", where)
        assert bad.value.field == field
    with pytest.raises(InvalidInput) as described:
        shop.audiences.put("nul", {"purchased": True}, "a\u0000b")
    assert described.value.field == "description"
    assert shop.audiences.list() == []
