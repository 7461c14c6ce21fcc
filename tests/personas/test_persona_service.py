"""Persona discovery on a shop: the groups found, their ids and names across runs, the `persona` guess
(and "that's not me"), erasure, and the small-shop and clustering paths, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from tests.personas.persona_shop import NOW, _order, build

from shopkeeper.errors import Conflict, InvalidInput, NotFound
from shopkeeper.privacy.service import Actor
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.personas import Member, RunRow
from shopkeeper.store.schema import persona_members, traits


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with Shop.from_settings(Settings(database_url=database_url, holdout_share=0)) as opened:
        yield opened


def _persona_of(shop: Shop, user: str) -> str | None:
    person = shop.privacy.find(user)
    with shop.store.engine.connect() as conn:
        found = shop.personas.of_person(conn, person)
    return None if found is None else found["id"]


def test_a_small_shop_gets_rfm_groups_that_cover_most_customers(shop: Shop) -> None:
    people = build(shop)
    found = shop.personas.discover()
    assert found["method"] == "rfm" and found["customers"] == 40  # browsers have no orders
    assert found["coverage"] >= 0.7
    names = {p["name"] for p in found["personas"]}
    assert names <= {"Champions", "Loyal customers", "New customers", "At risk", "Lapsed customers"}
    assert sum(p["size"] for p in found["personas"]) + found["everyone_else"]["size"] == 40
    assert abs(sum(p["share_customers"] for p in found["personas"]) - found["coverage"]) < 0.01
    by_id = {p["id"]: p for p in found["personas"]}
    # Known answers: the big spenders are champions, the lapsed one-timers lapsed; browsers are in none.
    assert by_id[_persona_of(shop, people["bigspender"][0])]["name"] == "Champions"
    assert {by_id[_persona_of(shop, u)]["name"] for u in people["lapsed"] if _persona_of(shop, u)} <= {
        "Lapsed customers",
        "At risk",
    }
    assert _persona_of(shop, people["browser"][0]) is None
    champions = next(p for p in found["personas"] if p["name"] == "Champions")
    assert champions["share_revenue"] > champions["share_customers"]  # £1,600 each
    assert champions["top_categories"][0] == "Candles" and champions["top_items"][0]["buyers"] >= 1
    assert champions["rule"] and champions["rule_agreement"] == 1.0


def test_the_clustering_path_above_the_small_shop_size(database_url: str) -> None:
    settings = Settings(database_url=database_url, holdout_share=0, personas_small_shop=10)
    with Shop.from_settings(settings) as shop:
        people = build(shop)
        found = shop.personas.discover(seed=1)
        assert found["method"] == "kmeans" and 2 <= found["k"] <= 7
        assert found["silhouette"] is not None and found["stability_ari"] is not None
        # The planted groups are apart: each lands whole in one persona (or in everyone else).
        for kind in ("bigspender", "regular", "lapsed"):
            assert len({_persona_of(shop, u) for u in people[kind]}) == 1, kind


def test_ids_and_a_marketers_name_stay_across_runs_and_churn_is_reported(shop: Shop) -> None:
    people = build(shop)
    first = shop.personas.discover()
    champions = next(p["id"] for p in first["personas"] if p["name"] == "Champions")
    renamed = shop.personas.rename(champions, "  Candle collectors ")
    assert renamed["name"] == "Candle collectors" and renamed["renamed"]
    assert shop.personas.discover(seed=7)["personas"]  # another seed: the same groups
    second = {p["id"]: p for p in shop.personas.list()["personas"]}
    assert second[champions]["name"] == "Candle collectors"
    assert {p["id"] for p in first["personas"]} == set(second)
    # The guess names the new name too.
    person = shop.privacy.find(people["bigspender"][0])
    assert shop.profiles.traits_of(person)["persona"].value == "Candle collectors"
    # Three lapsed customers come back big: they move, and the run says so.
    moved = [_order(u, 90 + n, 1 + n, 500.0, "Candles") for u in people["lapsed"][:3] for n in range(4)]
    shop.ingestor.ingest(moved)
    shop.profiles.builder.refresh_dirty()
    third = shop.personas.discover()
    moves = {(c["from"], c["to"]): c["count"] for c in third["churn"]}
    assert any(was == "Lapsed customers" and n >= 3 for (was, _), n in moves.items()), moves
    assert all(c["text"].startswith(f"{c['count']:,} moved from ") for c in third["churn"])


def test_a_person_who_says_that_is_not_me_loses_the_persona_now_and_later(shop: Shop) -> None:
    people = build(shop)
    shop.personas.discover()
    user = people["regular"][0]
    person = shop.privacy.find(user)
    guess = shop.profiles.traits_of(person)["persona"]
    assert guess.record.source == "inferred" and guess.record.evidence["model"] == "personas"
    assert 0 <= (guess.record.confidence or 0) <= 1
    shop.privacy.reject(user, {"key": "persona"}, Actor("cli", "test"))
    assert "persona" not in shop.profiles.traits_of(person)
    assert _persona_of(shop, user) is None
    assert shop.audiences.members.count({"persona": guess.record.evidence["persona_id"]}) == len(
        [u for u in people["regular"] if _persona_of(shop, u) == guess.record.evidence["persona_id"]]
    )
    shop.personas.discover()
    assert _persona_of(shop, user) is None and "persona" not in shop.profiles.traits_of(person)


def test_erasure_takes_the_person_out_of_every_persona(shop: Shop) -> None:
    people = build(shop)
    found = shop.personas.discover()
    typical = {m for p in found["personas"] for m in p["typical_members"]}
    victim = next(
        u
        for kind in ("bigspender", "regular", "newbie", "lapsed")
        for u in people[kind]
        if shop.privacy.find(u) in typical
    )
    person = shop.privacy.find(victim)
    shop.erase(victim)
    with shop.store.engine.connect() as conn:
        left = conn.scalar(select(func.count()).where(persona_members.c.person_id == person))
        guesses = conn.scalar(select(func.count()).where(traits.c.person_id == person))
    assert left == 0 and guesses == 0
    assert all(person not in p["typical_members"] for p in shop.personas.list()["personas"])


def test_precise_errors(shop: Shop) -> None:
    with pytest.raises(InvalidInput) as none:
        shop.personas.discover()
    assert none.value.field == "customers"
    build(shop)
    with pytest.raises(InvalidInput) as k:
        shop.personas.discover(k=1)
    assert k.value.field == "k"
    with pytest.raises(InvalidInput) as target:
        shop.personas.discover(target=1.5)
    assert target.value.field == "target"
    shop.personas.discover()
    with pytest.raises(NotFound):
        shop.personas.get("p99")
    for bad in ("", "   ", "x" * 129, "tab\there", "right\u202eleft", 7):
        with pytest.raises(InvalidInput) as name:
            shop.personas.rename("p1", bad)
        assert name.value.field == "name"
    assert NOW  # the shop's clock is the test's


def test_a_name_given_while_a_run_is_finding_personas_stays(shop: Shop) -> None:
    build(shop)
    shop.personas.discover()
    sql = shop.store.personas
    found = sql.all()  # what a run read before the marketer renamed p1
    shop.personas.rename(found[0].persona_id, "Named meanwhile")
    run = RunRow(0, NOW, "rfm", 0, {"k": len(found)})
    members = [Member(p, found[0].persona_id, 1.0) for p in list(sql.members())[:2]]
    guesses = [(m.person_id, found[0].name, 1.0, {"persona_id": found[0].persona_id}) for m in members]
    with write_transaction(shop.store.engine) as conn:
        sql.save_run(conn, run, found, members, guesses, after=sql.latest_run_id(conn))
    assert sql.get(found[0].persona_id).name == "Named meanwhile"
    assert shop.profiles.traits_of(members[0].person_id)["persona"].value == "Named meanwhile"


def test_a_run_leaves_out_people_erased_while_it_ran_and_refuses_to_follow_a_newer_run(shop: Shop) -> None:
    people = build(shop)
    shop.personas.discover()
    sql = shop.store.personas
    with shop.store.engine.connect() as conn:
        after = sql.latest_run_id(conn)
    found = sql.all()
    everyone = sql.members()
    victim_ref = people["regular"][0]
    victim = shop.privacy.find(victim_ref)
    shop.erase(victim_ref)  # between the run's reads and its write
    members = [Member(p, persona, 1.0) for p, persona in everyone.items()]
    guesses = [(p, "x", 1.0, {"persona_id": persona}) for p, persona in everyone.items()]
    found = [replace(row, body=row.body | {"typical_members": [victim]}) for row in found]
    with write_transaction(shop.store.engine) as conn:
        sql.save_run(conn, RunRow(0, NOW, "rfm", 0, {}), found, members, guesses, after=after)
    assert victim not in sql.members()
    assert all(victim not in row.body["typical_members"] for row in sql.all())
    with shop.store.engine.connect() as conn:
        assert not conn.scalar(select(func.count()).where(traits.c.person_id == victim))
    with pytest.raises(Conflict), write_transaction(shop.store.engine) as conn:  # a run saved since
        sql.save_run(conn, RunRow(0, NOW, "rfm", 0, {}), found, [], [], after=after)


def test_a_persona_rejected_by_name_stays_rejected_after_a_rename(shop: Shop) -> None:
    people = build(shop)
    shop.personas.discover()
    user = people["bigspender"][0]
    guess = shop.profiles.traits_of(shop.privacy.find(user))["persona"]
    shop.privacy.reject(user, {"key": "persona", "value": guess.value}, Actor("cli", "test"))
    shop.personas.rename(guess.record.evidence["persona_id"], "Renamed since")
    shop.personas.discover()
    assert _persona_of(shop, user) is None


def test_a_merged_away_persons_persona_does_not_pass_to_whom_they_merged_into(shop: Shop) -> None:
    people = build(shop)
    shop.personas.discover()
    lapsed, big = people["lapsed"][0], people["bigspender"][0]
    lapsed_persona, big_persona = _persona_of(shop, lapsed), _persona_of(shop, big)
    assert lapsed_persona != big_persona
    shop.alias(big, lapsed)  # the big spender's id now names the lapsed customer: one person
    person = shop.privacy.find(lapsed)
    count = sum(
        shop.audiences.members.contains({"persona": p}, person) for p in (lapsed_persona, big_persona)
    )
    assert count <= 1
