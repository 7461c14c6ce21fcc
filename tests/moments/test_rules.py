"""Moment rules: parse errors that name the field, TOML files (all or nothing), the default rules and what
replaces or stops them, and a rule's replay over a person's history (`shopkeeper moments test`), which
writes nothing. Parsing needs no database; the rest runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.in_process import run_main
from tests.moments.moments_support import Trousers, messages, open_shop, order, outcomes, person, view, wishes

from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.moments.rules import DEFAULT_RULES, parse_rule
from shopkeeper.shop import Shop

STAFF = {"trigger": "back_in_stock", "channels": ["staff"]}


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with open_shop(database_url) as opened:
        yield opened


# ---- parsing ----------------------------------------------------------------------------------------


def body(
    trigger: str = "price_drop", channels: tuple[str, ...] = ("staff",), **fields: Any
) -> dict[str, Any]:
    return {"trigger": trigger, "channels": list(channels), **fields}


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (body(params={"min_percent": 150}), "params.min_percent", "100"),
        (body(params={"min_pct": 5}), "params.min_pct", "not a parameter of this trigger"),
        (body("winback", params={"factor": 0.5}), "params.factor", "1"),
        (body(channels=()), "channels", "at least 1"),
        (body(channels=("fax",)), "channels.0", "'staff'"),
        (body(channels=("staff", "staff")), "channels", "twice"),
        ({"trigger": "price_drop"}, "channels", "required"),
        (body("birthday"), "trigger", "back_in_stock"),
        ({"channels": ["staff"]}, "trigger", "required"),
        (body(channels=("staff", "email")), "template", "template"),
        (body("milestone"), "params", "at least one of"),
        (body("milestone", params={"anniversary": False}), "params", "at least one of"),
        (body("milestone", params={"value": 5}), "params.value", "together"),
        # regression: a trait without its value was saved, and then could not be read back, which
        # stopped every rule (the engine reads them all on each step)
        (body("milestone", params={"trait": "miles"}), "params.value", "together"),
        (body(priority=101), "priority", "100"),
        (body(delay_seconds=-1), "delay_seconds", "0"),
        (body(colour="grey"), "colour", "not a field of a rule"),
        (body(where={"trait": "size"}), "where", "condition"),
    ],
)
def test_a_bad_rule_names_its_field(raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule("my-rule", raw, origin="test")
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize("name", ["", "Back In Stock", "-x", "a" * 65, "grey/34"])
def test_a_bad_rule_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule(name, STAFF, origin="test")
    assert caught.value.field == "name"


def test_a_rule_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule("x", ["back_in_stock"], origin="test")
    assert caught.value.field == "body"


def test_a_rule_takes_its_trigger_defaults() -> None:
    cart = parse_rule("cart", {"trigger": "abandoned_cart", "channels": ["staff"]}, origin="test")
    assert (cart.delay_seconds, cart.priority, cart.enabled, cart.origin) == (4 * 3600, 50, True, "test")
    drop = parse_rule("drop", {"trigger": "price_drop", "channels": ["webhook"]}, origin="test")
    assert (drop.params.min_percent, drop.params.min_amount, drop.params.seen_days) == (10, 0, 30)
    assert drop.delay_seconds == 0
    miles = {"trigger": "milestone", "channels": ["staff"], "params": {"trait": "miles", "value": 2e6}}
    assert parse_rule("miles", miles, origin="test").params.value == 2_000_000


def test_a_saved_rule_reads_back_as_it_was_saved(shop: Shop) -> None:
    """What is stored is the rule with every parameter filled in: it must parse again (a rule that
    parses once and not again would stop every rule, since the engine reads them all each step)."""
    miles = {"trigger": "milestone", "channels": ["staff"], "params": {"trait": "miles", "value": 2e6}}
    saved = shop.moments.put_rule("miles", miles, origin="http")
    assert shop.moments.engine.rule("miles").to_json() == saved
    assert saved["params"] == {
        "orders": [],
        "spend": [],
        "anniversary": False,
        "trait": "miles",
        "value": 2e6,
    }


# ---- TOML files ---------------------------------------------------------------------------------------

GOOD_FILE = """
[back_in_stock]
trigger = "back_in_stock"
channels = ["staff"]
priority = 90
params = { dedupe_days = 3 }

[cheaper]
trigger = "price_drop"
channels = ["email", "staff"]
template = "price_drop"
[cheaper.params]
min_percent = 20
min_amount = 5
"""


def test_load_saves_every_rule_of_a_toml_file(shop: Shop, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD_FILE, encoding="utf-8")
    saved = shop.moments.load(path)
    assert [(r["name"], r["origin"]) for r in saved] == [("back_in_stock", "file"), ("cheaper", "file")]
    rules = shop.moments.engine.rules()
    assert sorted(rules) == ["back_in_stock", "cheaper", "milestone", "price_drop"]
    assert (rules["back_in_stock"].priority, rules["back_in_stock"].params.dedupe_days) == (90, 3)
    assert (rules["cheaper"].channels, rules["cheaper"].params.min_percent) == (("email", "staff"), 20)
    assert rules["price_drop"].origin == "default"


def test_load_reads_rules_under_a_rules_table(shop: Shop, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[rules.ask-size]\ntrigger = "ask"\nchannels = ["staff"]\n', encoding="utf-8")
    assert [r["name"] for r in shop.moments.load(path)] == ["ask-size"]
    assert shop.moments.engine.rule("ask-size").params.question == "size"


BAD_TABLES = {
    "params": (
        "[bad]\ntrigger = 'price_drop'\nchannels = ['staff']\nparams = { min_percent = -1 }\n",
        "bad.params.min_percent",
    ),
    "milestone": ("[bad]\ntrigger = 'milestone'\nchannels = ['staff']\n", "bad.params"),
    "template": ("[bad]\ntrigger = 'price_drop'\nchannels = ['email']\n", "bad.template"),
    # regression: an audience was checked only as each rule was saved, after the ones before it
    "audience": ("[bad]\ntrigger = 'price_drop'\nchannels = ['staff']\naudience = 'vip'\n", "bad.audience"),
    "name": ("[Bad]\ntrigger = 'price_drop'\nchannels = ['staff']\n", "name"),
}


def test_load_is_all_or_nothing(shop: Shop, tmp_path: Path) -> None:
    """A file whose last table is bad saves none of its good ones; each case in the same shop."""
    found = {}
    for case, (bad, _) in BAD_TABLES.items():
        path = tmp_path / f"{case}.toml"
        path.write_text(GOOD_FILE + "\n" + bad, encoding="utf-8")
        with pytest.raises(InvalidInput) as caught:
            shop.moments.load(path)
        found[case] = caught.value.field
    assert found == {case: field for case, (_, field) in BAD_TABLES.items()}
    assert sorted(shop.moments.engine.rules()) == ["back_in_stock", "milestone", "price_drop"]
    assert shop.moments.engine.rule("back_in_stock").origin == "default"  # the good tables were not saved


def test_load_refuses_a_file_that_holds_no_rules(shop: Shop, tmp_path: Path) -> None:
    files = {
        "broken": b"[broken\n",
        "empty": b"",
        "no tables": b"title = 'no tables'\n",
        "not UTF-8": b"\xff",
    }
    found = {}
    for case, text in files.items():
        path = tmp_path / "rules.toml"
        path.write_bytes(text)
        with pytest.raises(InvalidInput) as caught:
            shop.moments.load(path)
        found[case] = caught.value.field
    assert found == {"broken": "file", "empty": "file", "no tables": "title", "not UTF-8": "file"}
    assert all(r.origin == "default" for r in shop.moments.engine.rules().values())


# ---- the defaults, and what replaces or stops them -------------------------------------------------------


def restock_for_ann(shop: Shop) -> None:
    """Ann wishes for the grey 34, and it comes back."""
    trousers = Trousers(shop)
    person(shop, "ann")
    shop.moments.add_wish("ann", {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"})
    trousers.set("grey", "34", 2)
    shop.moments.engine.step()


def test_a_fresh_shop_has_the_documented_default_rules(shop: Shop) -> None:
    rules = shop.moments.engine.rules()
    assert sorted(rules) == sorted(DEFAULT_RULES) == ["back_in_stock", "milestone", "price_drop"]
    assert {(r.trigger, r.origin, r.enabled) for r in rules.values()} == {
        ("back_in_stock", "default", True),
        ("price_drop", "default", True),
        ("milestone", "default", True),
    }
    assert rules["back_in_stock"].channels == ("staff", "email")
    restock_for_ann(shop)
    assert outcomes(messages(shop, "ann")) == [("back_in_stock", "pending", None)]


def test_a_stored_rule_replaces_the_default_of_its_name(shop: Shop) -> None:
    shop.moments.put_rule("back_in_stock", {**STAFF, "priority": 99, "template": "mine"}, origin="http")
    rules = shop.moments.engine.rules()
    assert (rules["back_in_stock"].origin, rules["back_in_stock"].priority) == ("http", 99)
    assert rules["back_in_stock"].channels == ("staff",)
    assert (rules["price_drop"].origin, rules["milestone"].origin) == ("default", "default")
    restock_for_ann(shop)
    (row,) = messages(shop, "ann")
    assert (row.rule, row.priority, row.template, row.status) == ("back_in_stock", 99, "mine", "pending")


def test_a_rule_switched_off_makes_nothing(shop: Shop) -> None:
    shop.moments.put_rule("back_in_stock", {**STAFF, "enabled": False}, origin="http")
    assert shop.moments.engine.rule("back_in_stock").enabled is False
    restock_for_ann(shop)
    assert messages(shop) == []
    assert [w["status"] for w in wishes(shop, "ann")] == ["open"]  # kept for when the rule is on again


def test_without_the_default_rules_a_shop_has_none(database_url: str) -> None:
    with open_shop(database_url, default_rules=False) as shop:
        assert shop.moments.engine.rules() == {}
        assert shop.moments.rules() == []
        restock_for_ann(shop)
        assert messages(shop) == []
        with pytest.raises(NotFound) as caught:
            shop.moments.engine.rule("back_in_stock")
        assert caught.value.field == "name"


# ---- a rule's replay ---------------------------------------------------------------------------------


def salesman_story(shop: Shop, *, staff: bool = True) -> tuple[int, Trousers]:
    """Ann states size 34, views the grey 34 (out of stock), buys the blue; staff record "call me when
    the grey comes in"; then the grey 34 comes back. The engine saw the events, not the restock."""
    trousers = Trousers(shop)
    ann = person(shop, "ann", {"size": "34", "first_name": "Ann"})
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-34"})
    order(shop, "ann", "o-1", "trousers-blue")
    shop.moments.engine.step()
    if staff:
        shop.moments.add_wish(
            "ann", {"item_id": "trousers-grey", "attributes": {"colour": "grey"}, "source": "staff"}
        )
    trousers.set("grey", "34", 3)
    return ann, trousers


def brief(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(line["what"], line["outcome"], line.get("reason"), line.get("variant_id")) for line in lines]


def test_replay_shows_the_wish_and_the_moment_at_the_restock_and_writes_nothing(shop: Shop) -> None:
    ann, _ = salesman_story(shop)
    before = (wishes(shop, "ann"), messages(shop))
    (restocked,) = [c for c in shop.store.catalog.history("trousers-grey") if c.new_value == 3]

    lines = shop.moments.engine.replay("back_in_stock", ann)
    assert brief(lines) == [
        ("track Product Viewed", "wish", None, None),
        ("stock of trousers-grey grey-34: 0.0 -> 3.0", "pending", None, "grey-34"),
    ]
    assert lines[1]["at"] == lines[1]["due_at"] == restocked.at.isoformat()
    assert (lines[1]["channel"], lines[1]["item_id"]) == ("staff", "trousers-grey")
    assert (wishes(shop, "ann"), messages(shop)) == before  # nothing was written

    shop.moments.engine.step()  # the engine makes the moment; a replay now says it was made already
    assert outcomes(messages(shop, "ann")) == [("back_in_stock", "pending", None)]
    again = shop.moments.engine.replay("back_in_stock", ann)
    assert [(line["outcome"], line.get("reason")) for line in again] == [
        ("wish", None),
        ("suppressed", "duplicate"),
    ]
    assert len(messages(shop)) == 1


def test_replay_records_the_wishes_of_the_history_in_a_transaction_that_is_rolled_back(shop: Shop) -> None:
    """Here the engine never saw the view (it steps after the restock): the replay records the wish
    itself, and the store still holds none afterwards."""
    trousers = Trousers(shop)
    ann = person(shop, "ann")
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-34"})
    trousers.set("grey", "34", 1)
    lines = shop.moments.engine.replay("back_in_stock", ann)
    assert [(line["outcome"], line["why"]) for line in lines] == [
        ("wish", "wish recorded (observed)"),
        ("pending", "would be sent"),
    ]
    assert wishes(shop, "ann") == []
    assert messages(shop) == []


def test_replay_of_another_rule_or_an_unknown_one(shop: Shop) -> None:
    ann, _ = salesman_story(shop)
    # the wishes of the history are recorded whatever the rule; the price never moved
    assert brief(shop.moments.engine.replay("price_drop", ann)) == [
        ("track Product Viewed", "wish", None, None)
    ]
    with pytest.raises(NotFound):
        shop.moments.engine.replay("no-such-rule", ann)


def test_moments_test_on_the_command_line(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPKEEPER_HOLDOUT_SHARE", "0")
    with open_shop(database_url) as shop:
        salesman_story(shop)
    code, out, err = run_main(
        capsys, "moments", "test", "back_in_stock", "--person", "ann", "--db", database_url, "--json"
    )
    assert (code, err) == (0, "")
    found = json.loads(out)
    assert (found["rule"], found["person"]) == ("back_in_stock", "ann")
    assert [(line["outcome"], line.get("variant_id")) for line in found["lines"]] == [
        ("wish", None),
        ("pending", "grey-34"),
    ]
    with Shop.open(database_url) as shop:  # (no step of the engine here)
        assert messages(shop) == []
