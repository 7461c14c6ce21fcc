"""`shopkeeper personas` and `shopkeeper audiences`, as a marketer runs them: the `discover --json` contract
on the bundled sample (the RFM path; with SHOPKEEPER_PERSONAS_SMALL_SHOP lowered, k-means), renames that
stay across runs, audiences with the guard's warning, the broad-vs-narrow comparison, and every mistake as
one line on stderr with exit code 1, naming the spot in a condition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.cli.in_process import run_main
from tests.personas.persona_shop import PERSONA_KEYS, import_sample

from shopkeeper import Shop


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample replayed to end today, profiles built: imported once for this module."""
    return import_sample(tmp_path_factory.mktemp("personas-cli") / "sample.db")


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> str:
    copy = tmp_path / "shop.db"
    shutil.copy(sample_db, copy)
    return f"sqlite:///{copy}"


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run_main(capsys, *args)
    assert code == 0, (args, out, err)
    return out


def ok_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(ok(capsys, *args, "--json"))


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """A mistake: exit code 1, nothing on stdout, one line on stderr, no traceback."""
    code, out, err = run_main(capsys, *args)
    assert code == 1, (args, code, out, err)
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def check_contract(found: dict[str, Any]) -> None:
    assert set(found) >= {"k", "coverage", "silhouette", "stability_ari", "personas"}
    assert isinstance(found["k"], int) and len(found["personas"]) == found["k"]
    assert isinstance(found["coverage"], float)
    assert found["silhouette"] is None or isinstance(found["silhouette"], float)
    assert found["stability_ari"] is None or isinstance(found["stability_ari"], float)
    for persona in found["personas"]:
        assert set(persona) >= PERSONA_KEYS, sorted(PERSONA_KEYS - set(persona))
        assert isinstance(persona["id"], str) and isinstance(persona["name"], str) and persona["name"]
        assert isinstance(persona["rule"], str) and isinstance(persona["description"], str)
        assert isinstance(persona["rule_agreement"], float) and isinstance(persona["size"], int)
        assert isinstance(persona["share_customers"], float) and isinstance(persona["share_revenue"], float)
        assert isinstance(persona["top_categories"], list)
    shares = sum(p["share_customers"] for p in found["personas"])
    assert shares == pytest.approx(found["coverage"], abs=0.01)
    assert shares + found["everyone_else"]["share_customers"] == pytest.approx(1.0, abs=0.01)


# ---- personas ---------------------------------------------------------------------------------------------


def test_discover_json_on_the_sample_is_the_rfm_contract(capsys: pytest.CaptureFixture[str], db: str) -> None:
    found = ok_json(capsys, "personas", "discover", "--db", db)
    check_contract(found)
    assert found["method"] == "rfm" and found["coverage"] >= 0.7
    assert "Champions" in {p["name"] for p in found["personas"]}
    listed = ok_json(capsys, "personas", "list", "--db", db)
    assert [p["id"] for p in listed["personas"]] == [p["id"] for p in found["personas"]]
    first = found["personas"][0]
    shown = ok_json(capsys, "personas", "show", first["id"], "--db", db)
    assert (shown["id"], shown["name"], shown["size"]) == (first["id"], first["name"], first["size"])
    text = ok(capsys, "personas", "discover", "--db", db)
    assert f"{found['k']} personas cover" in text and "Champions" in text and "RFM groups" in text
    assert "Champions" in ok(capsys, "personas", "list", "--db", db)
    assert first["name"] in ok(capsys, "personas", "show", first["id"], "--db", db)


def test_a_rename_stays_across_runs_and_bad_names_are_refused(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    first = ok_json(capsys, "personas", "discover", "--db", db)
    champions = next(p["id"] for p in first["personas"] if p["name"] == "Champions")
    renamed = ok_json(capsys, "personas", "rename", champions, "Our VIPs", "--db", db)
    assert (renamed["name"], renamed["renamed"]) == ("Our VIPs", True)
    assert "is now 'Big spenders'" in ok(capsys, "personas", "rename", champions, "Big spenders", "--db", db)
    again = ok_json(capsys, "personas", "discover", "--db", db)
    assert {p["id"]: p["name"] for p in again["personas"]}[champions] == "Big spenders"
    assert {p["id"] for p in again["personas"]} == {p["id"] for p in first["personas"]}
    for bad in ("", "   ", "x" * 200, "bell\x07", "evil\u202etxt"):
        assert "name" in fails(capsys, "personas", "rename", champions, bad, "--db", db)
    assert "p999" in fails(capsys, "personas", "show", "p999", "--db", db)
    assert "p999" in fails(capsys, "personas", "rename", "p999", "Ghosts", "--db", db)
    assert ok_json(capsys, "personas", "show", champions, "--db", db)["name"] == "Big spenders"


@pytest.mark.slow  # k-means with its stability resampling: seconds
def test_with_the_small_shop_setting_lowered_discover_clusters(
    capsys: pytest.CaptureFixture[str], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPKEEPER_PERSONAS_SMALL_SHOP", "50")
    found = ok_json(capsys, "personas", "discover", "--k", "3", "--seed", "1", "--db", db)
    check_contract(found)
    assert found["method"] == "kmeans" and found["k"] == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--k", "three"], "--k"),
        (["--k", "1"], "2 to 12"),
        (["--k", "13"], "2 to 12"),
        (["--target", "2"], "0.3 to 0.95"),
        (["--target", "0.1"], "0.3 to 0.95"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**31)], "--seed"),
    ],
)
def test_bad_discover_options_are_one_line(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, args: list[str], words: str
) -> None:
    assert words in fails(capsys, "personas", "discover", *args, "--db", sqlite_url)


def test_discover_on_an_empty_shop_says_there_are_no_customers(
    capsys: pytest.CaptureFixture[str], sqlite_url: str
) -> None:
    assert "no customers" in fails(capsys, "personas", "discover", "--db", sqlite_url)
    assert "No personas yet" in ok(capsys, "personas", "list", "--db", sqlite_url)


# ---- audiences ---------------------------------------------------------------------------------------


def small_shop(url: str) -> None:
    """Twelve customers on any backend: u{i} placed 1 + i % 4 orders."""
    with Shop.open(url) as shop:
        for u in range(12):
            for o in range(1 + u % 4):
                products = [{"product_id": f"i{u % 3}", "quantity": 1}]
                shop.track(
                    "Order Completed",
                    user_id=f"u{u}",
                    properties={"order_id": f"o{u}-{o}", "products": products},
                )


def test_audiences_are_created_replaced_listed_shown_and_deleted(
    capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    small_shop(database_url)
    where = '{"event": "Order Completed", "at_least": 3}'
    created = ok_json(capsys, "audiences", "create", "regulars", "--where", where, "--db", database_url)
    assert created["created"] is True and created["reach"]["size"] == 6
    narrower = '{"event": "Order Completed", "at_least": 4}'
    replaced = ok_json(
        capsys,
        "audiences",
        "create",
        "regulars",
        "--where",
        narrower,
        "--description",
        "4+",
        "--db",
        database_url,
    )
    assert replaced["created"] is False and replaced["reach"]["size"] == 3 and replaced["description"] == "4+"
    listed = ok_json(capsys, "audiences", "list", "--db", database_url)
    assert [(a["name"], a["size"]) for a in listed["items"]] == [("regulars", 3)]
    shown = ok_json(capsys, "audiences", "show", "regulars", "--db", database_url)
    assert shown["where"] == {"event": "Order Completed", "at_least": 4} and shown["reach"]["size"] == 3
    text = ok(capsys, "audiences", "show", "regulars", "--db", database_url)
    assert "3 people" in text and "Fewer than 10 people" in text
    assert "regulars" in ok(capsys, "audiences", "list", "--db", database_url)
    deleted = ok_json(capsys, "audiences", "delete", "regulars", "--db", database_url)
    assert deleted == {"deleted": True, "name": "regulars"}
    assert "regulars" in fails(capsys, "audiences", "show", "regulars", "--db", database_url)
    assert "regulars" in fails(capsys, "audiences", "delete", "regulars", "--db", database_url)


def test_a_narrow_audience_prints_the_guards_warning(capsys: pytest.CaptureFixture[str], db: str) -> None:
    out = ok(
        capsys, "audiences", "create", "whales", "--where", '{"trait": "order_count", "gte": 40}', "--db", db
    )
    assert out.startswith("Created whales: have order_count of at least 40.")
    assert "Narrow:" in out and "left out" in out and "Fewer than 10 people" in out
    found = ok_json(capsys, "audiences", "show", "whales", "--db", db)
    assert found["reach"]["guard"]["narrow"] is True and found["reach"]["guard"]["k_anonymous"] is False


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ('{"event": ', "--where is not valid JSON"),
        ("[]", "where:"),
        ('{"all": [{"event": "Viewed", "at_least": "3"}]}', "where.all[0].at_least"),
        ('{"any": [{"event": "x"}, {"trait": "t", "gte": "many"}]}', "where.any[1].gte"),
        ('{"event": "Viewed", "colour": "red"}', "where.colour"),
        ('{"colour": "red"}', "where.colour"),
        ('{"all": []}', "where.all"),
        (
            '{"not": {"not": {"not": {"not": {"not": {"not": {"event": "x"}}}}}}}',
            "where.not.not.not.not.not.not",
        ),
        ('{"purchased": true, "within_days": -1}', "where.within_days"),
    ],
)
def test_a_bad_condition_names_its_spot(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, where: str, field: str
) -> None:
    assert field in fails(capsys, "audiences", "create", "bad", "--where", where, "--db", sqlite_url)
    assert "bad" in fails(capsys, "audiences", "show", "bad", "--db", sqlite_url)


def test_a_bad_audience_name_is_one_line(capsys: pytest.CaptureFixture[str], sqlite_url: str) -> None:
    err = fails(capsys, "audiences", "create", "not ok", "--where", '{"event": "x"}', "--db", sqlite_url)
    assert "letters, digits" in err


def test_compare_starts_then_reports_and_refuses_a_tiny_audience(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    found = ok_json(capsys, "personas", "discover", "--db", db)
    lapsed = next(p for p in found["personas"] if p["name"] == "Lapsed customers")
    ok(capsys, "audiences", "create", "lapsed", "--where", json.dumps({"persona": lapsed["id"]}), "--db", db)
    started = ok_json(capsys, "audiences", "compare", "lapsed", "--db", db)
    assert (started["experiment"], started["started"], started["verdict"]) == (
        "compare-lapsed",
        True,
        "not proven yet",
    )
    assert started["narrow"]["size"] == lapsed["size"]
    text = ok(capsys, "audiences", "compare", "lapsed", "--placement", "web", "--db", db)
    assert text.startswith("Running: compare-lapsed") and "Not proven yet" in text
    assert ok_json(capsys, "audiences", "compare", "lapsed", "--db", db)["started"] is False
    ok(capsys, "audiences", "create", "whales", "--where", '{"trait": "order_count", "gte": 40}', "--db", db)
    assert "fewer than 10" in fails(capsys, "audiences", "compare", "whales", "--db", db)
    assert "nobody" in fails(capsys, "audiences", "compare", "nobody", "--db", db)
