"""`shopkeeper moments|tasks|outbox|worker`, as a user runs them: exit codes, the `--json` shapes, and every
mistake (an unknown rule, bad TOML, a bad outcome) as one line on stderr with exit code 1, no traceback."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.in_process import run_main

from shopkeeper import Shop
from shopkeeper.catalog.items import parse_items

# What issue 15's contract promises in every item of a task or outbox listing.
CONTRACT_FIELDS = {
    "id",
    "person",
    "rule",
    "channel",
    "status",
    "reason",
    "created_at",
    "item_id",
    "variant_id",
}
CONTRACT_FIELDS |= {"text", "context"}


def grey(stock34: int) -> dict[str, Any]:
    return {
        "item_id": "grey",
        "title": "Grey trousers",
        "category": "Clothing > Trousers",
        "price": 120.0,
        "currency": "GBP",
        "variants": [
            {"variant_id": f"grey-{s}", "attributes": {"size": str(s)}, "stock": stock34 if s == 34 else 4}
            for s in range(32, 37)
        ],
    }


@pytest.fixture
def db(sqlite_url: str) -> str:
    """Ann stated size 34 and viewed the grey 34 while it was sold out (a wish); it has just come back,
    and no worker has run since."""
    with Shop.open(sqlite_url) as shop:
        shop.moments.engine.step()  # the engine starts at the log's end
        shop.store.catalog.upsert(parse_items([grey(0)]))
        shop.identify(user_id="ann", traits={"email": "ann@example.com"})
        shop.state_preferences("ann", {"size": "34"})
        shop.track(
            "Product Viewed", user_id="ann", properties={"product_id": "grey", "variant_id": "grey-34"}
        )
        shop.identify(user_id="cy", traits={"email": "cy@example.com"})
        shop.moments.engine.step()
        assert [w["variant_id"] for w in shop.moments.wishes("ann")["items"]] == ["grey-34"]
        shop.store.catalog.upsert(parse_items([grey(3)]))
    return sqlite_url


@pytest.fixture
def signals() -> Iterator[None]:
    """`shopkeeper worker` sets its own SIGINT and SIGTERM handlers: put pytest's back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def run_ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run_main(capsys, *args)
    assert code == 0, (args, out, err)
    return out


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(run_ok(capsys, *args, "--json"))


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """A user's mistake: exit 1, one line on stderr that starts with "error: ", no traceback."""
    code, out, err = run_main(capsys, *args)
    assert code == 1, (args, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    return err


# ---- moments -------------------------------------------------------------------------------------------


def test_moments_list_and_show(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    listed = run_json(capsys, "moments", "list", "--db", db)
    rules = {r["name"]: r for r in listed["items"]}
    assert {"back_in_stock", "price_drop", "milestone"} <= set(rules)
    back = rules["back_in_stock"]
    assert (back["trigger"], back["channels"], back["template"]) == (
        "back_in_stock",
        ["staff", "email"],
        "back_in_stock",
    )
    assert (back["enabled"], back["origin"]) == (True, "default")
    assert back["last_30_days"] == {"sent": 0, "suppressed": {}, "pending": 0, "failed": 0}
    table = run_ok(capsys, "moments", "list", "--db", db)
    assert "back_in_stock" in table and "staff > email" in table and "default" in table
    shown = run_json(capsys, "moments", "show", "price_drop", "--db", db)
    assert (shown["name"], shown["trigger"], shown["recent"]) == ("price_drop", "price_drop", [])
    assert shown["params"]["min_percent"] == 10
    text = run_ok(capsys, "moments", "show", "back_in_stock", "--db", db)
    assert "trigger back_in_stock, channels staff > email" in text and "nothing in the outbox" in text
    assert "no moment rule named 'nope'" in refused(capsys, "moments", "show", "nope", "--db", db)
    assert "rule name" in refused(capsys, "moments", "show", "Not OK", "--db", db)


def test_moments_test_replays_a_persons_history_and_writes_nothing(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    replayed = run_json(capsys, "moments", "test", "back_in_stock", "--person", "ann", "--db", db)
    assert (replayed["rule"], replayed["person"]) == ("back_in_stock", "ann")
    wish, restock = replayed["lines"]
    assert (wish["what"], wish["outcome"]) == ("track Product Viewed", "wish")
    assert restock["what"] == "stock of grey grey-34: 0.0 -> 3.0"
    assert (restock["outcome"], restock["why"], restock["channel"], restock["reason"]) == (
        "pending",
        "would be sent",
        "staff",
        None,
    )
    assert (restock["item_id"], restock["variant_id"]) == ("grey", "grey-34")
    table = run_ok(capsys, "moments", "test", "back_in_stock", "--person", "ann", "--db", db)
    assert "would be sent" in table and "grey-34" in table
    assert run_json(capsys, "outbox", "list", "--db", db) == {"items": []}, "a replay wrote a moment"
    nothing = run_ok(capsys, "moments", "test", "back_in_stock", "--person", "cy", "--db", db)
    assert "nothing in cy's history would have fired it" in nothing
    assert "no person" in refused(
        capsys, "moments", "test", "back_in_stock", "--person", "nobody", "--db", db
    )
    assert "no moment rule named 'nope'" in refused(
        capsys, "moments", "test", "nope", "--person", "ann", "--db", db
    )
    code, _, err = run_main(capsys, "moments", "test", "back_in_stock", "--db", db)
    assert code == 2 and "--person" in err  # a missing option is typer's usage error


def test_moments_load_checks_every_rule_before_saving_any(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "rules.toml"
    good.write_text(
        '[grey_back]\ntrigger = "back_in_stock"\nchannels = ["staff"]\npriority = 90\n'
        "[grey_back.params]\ndedupe_days = 3\n\n"
        '[price_drop]\ntrigger = "price_drop"\nchannels = ["email"]\ntemplate = "price_drop"\n'
        "enabled = false\n"
    )
    loaded = run_json(capsys, "moments", "load", str(good), "--db", db)
    assert [(r["name"], r["origin"]) for r in loaded["items"]] == [
        ("grey_back", "file"),
        ("price_drop", "file"),
    ]
    rules = {r["name"]: r for r in run_json(capsys, "moments", "list", "--db", db)["items"]}
    assert rules["grey_back"]["params"] == {"dedupe_days": 3} and rules["grey_back"]["priority"] == 90
    assert rules["price_drop"]["enabled"] is False
    assert "saved grey_back (back_in_stock, staff)" in run_ok(
        capsys, "moments", "load", str(good), "--db", db
    )

    half = tmp_path / "half.toml"
    half.write_text(
        '[aa]\ntrigger = "back_in_stock"\nchannels = ["staff"]\n'
        '[bb]\ntrigger = "birthday"\nchannels = ["staff"]\n'
    )
    assert "bb.trigger" in refused(capsys, "moments", "load", str(half), "--db", db)
    broken = tmp_path / "broken.toml"
    broken.write_text("[grey_back\ntrigger = 1\n")
    assert "is not valid TOML" in refused(capsys, "moments", "load", str(broken), "--db", db)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert "holds no rules" in refused(capsys, "moments", "load", str(empty), "--db", db)
    params = tmp_path / "params.toml"
    params.write_text('[cc]\ntrigger = "back_in_stock"\nchannels = ["staff"]\n[cc.params]\nsoon = 1\n')
    assert "cc.params.soon" in refused(capsys, "moments", "load", str(params), "--db", db)
    assert "cannot read" in refused(capsys, "moments", "load", str(tmp_path / "missing.toml"), "--db", db)
    names = {r["name"] for r in run_json(capsys, "moments", "list", "--db", db)["items"]}
    assert not names & {"aa", "bb", "cc"}, "a file with a bad rule saved some of its rules"


# ---- the worker, the staff inbox and the outbox ---------------------------------------------------------


def test_worker_once_makes_the_task_and_tasks_are_claimed_and_done(
    db: str, capsys: pytest.CaptureFixture[str], signals: None
) -> None:
    summary = run_ok(capsys, "worker", "--once", "--db", db)
    assert summary.strip() == "sent 1, retried 0, failed 0, suppressed 0, held 0"
    assert run_ok(capsys, "worker", "--once", "--db", db).strip().startswith("sent 0,")  # nothing new
    [task] = run_json(capsys, "tasks", "list", "--db", db)["items"]
    assert set(task) >= CONTRACT_FIELDS, sorted(CONTRACT_FIELDS - set(task))
    assert (task["person"], task["rule"], task["channel"], task["status"]) == (
        "ann",
        "back_in_stock",
        "staff",
        "open",
    )
    assert (task["item_id"], task["variant_id"]) == ("grey", "grey-34")
    # Regression: the observed wish read "looked at when it was sold out the Grey trousers".
    assert task["text"] == "This customer looked at the Grey trousers when it was sold out; it is back in 34."
    inbox = run_ok(capsys, "tasks", "list", "--db", db)
    assert f"task {task['id']} (open" in inbox and "why now:" in inbox and "Grey trousers" in inbox
    assert "size 34, you told us, " in inbox
    assert run_json(capsys, "tasks", "list", "--person", "cy", "--db", db) == {"items": []}

    task_id = str(task["id"])
    claimed = run_json(capsys, "tasks", "claim", task_id, "--as", "mia", "--db", db)
    assert (claimed["status"], claimed["assignee"]) == ("claimed", "mia")
    assert [t["id"] for t in run_json(capsys, "tasks", "list", "--assignee", "mia", "--db", db)["items"]] == [
        task["id"]
    ]
    assert "outcome is one of" in refused(capsys, "tasks", "done", task_id, "--outcome", "sold", "--db", db)
    done = run_json(
        capsys, "tasks", "done", task_id, "--outcome", "contacted", "--note", "left a message", "--db", db
    )
    assert (done["status"], done["outcome"], done["note"]) == ("done", "contacted", "left a message")
    assert f"task {task_id} is done" in refused(
        capsys, "tasks", "done", task_id, "--outcome", "contacted", "--db", db
    )
    assert f"task {task_id} is done" in refused(capsys, "tasks", "claim", task_id, "--db", db)
    assert "no task 999" in refused(capsys, "tasks", "claim", "999", "--db", db)
    assert "no task 999" in refused(capsys, "tasks", "done", "999", "--outcome", "contacted", "--db", db)
    assert run_ok(capsys, "tasks", "list", "--db", db).strip() == "no tasks"
    [closed] = run_json(capsys, "tasks", "list", "--status", "all", "--db", db)["items"]
    assert closed["outcome"] == "contacted"
    assert "status is one of" in refused(capsys, "tasks", "list", "--status", "lost", "--db", db)
    code, _, err = run_main(capsys, "tasks", "done", task_id, "--db", db)
    assert code == 2 and "--outcome" in err
    with Shop.open(db) as shop:
        events = shop.store.events.for_person(shop.privacy.find("ann"), limit=10)
    [outcome] = [e for e in events if e.get("event") == "Staff Task Completed"]
    assert outcome["properties"]["outcome"] == "contacted" and outcome["properties"]["by"] == "cli"


def test_outbox_list_filters_and_json(db: str, capsys: pytest.CaptureFixture[str], signals: None) -> None:
    run_ok(capsys, "worker", "--once", "--db", db)
    listed = run_json(capsys, "outbox", "list", "--status", "sent", "--person", "ann", "--db", db)
    [row] = listed["items"]
    assert set(row) >= CONTRACT_FIELDS, sorted(CONTRACT_FIELDS - set(row))
    assert (row["person"], row["rule"], row["channel"], row["status"], row["reason"]) == (
        "ann",
        "back_in_stock",
        "staff",
        "sent",
        None,
    )
    assert (row["item_id"], row["variant_id"]) == ("grey", "grey-34") and "Grey trousers" in row["text"]
    assert run_json(capsys, "outbox", "list", "--status", "pending", "--db", db) == {"items": []}
    assert run_json(capsys, "outbox", "list", "--person", "cy", "--db", db) == {"items": []}
    table = run_ok(capsys, "outbox", "list", "--db", db)
    assert "back_in_stock" in table and "sent" in table and "ann" in table
    assert (
        run_ok(capsys, "outbox", "list", "--status", "failed", "--db", db).strip() == "nothing in the outbox"
    )
    assert "status is one of" in refused(capsys, "outbox", "list", "--status", "lost", "--db", db)
    assert "no person" in refused(capsys, "outbox", "list", "--person", "nobody", "--db", db)
    code, _, err = run_main(capsys, "outbox", "list", "--limit", "0", "--db", db)
    assert code == 2 and "--limit" in err


def test_worker_refuses_an_smtp_server_without_a_from_address(
    db: str, capsys: pytest.CaptureFixture[str], signals: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPKEEPER_SMTP_HOST", "127.0.0.1")
    assert "SHOPKEEPER_MAIL_FROM" in refused(capsys, "worker", "--once", "--db", db)
