"""The `shopkeeper` command as a user runs it: a real process, its output, its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shopkeeper import Shop


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    full_env.pop("SHOPKEEPER_DATABASE_URL", None) if env is None else None
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def test_keys_create_prints_the_key_as_the_last_word(database_url: str) -> None:
    done = run("keys", "create", "--kind", "write", "--name", "web", "--db", database_url)
    assert done.returncode == 0, done.stderr
    key = done.stdout.split()[-1]
    assert key.startswith("sk_write_")
    with Shop.open(database_url) as shop:
        found = shop.store.keys.authenticate(key)
        assert found is not None and found.kind == "write" and found.name == "web"
        # Only the hash is stored.
        assert key not in json.dumps([str(k) for k in shop.store.keys.list()])


def test_keys_list_and_revoke(sqlite_url: str) -> None:
    key = run("keys", "create", "--kind", "admin", "--db", sqlite_url).stdout.split()[-1]
    listed = json.loads(run("keys", "list", "--json", "--db", sqlite_url).stdout)
    assert [(k["id"], k["kind"], k["revoked_at"]) for k in listed] == [(1, "admin", None)]
    assert key not in json.dumps(listed)
    assert run("keys", "revoke", "1", "--db", sqlite_url).returncode == 0
    with Shop.open(sqlite_url) as shop:
        assert shop.store.keys.authenticate(key) is None
    again = run("keys", "revoke", "1", "--db", sqlite_url)
    assert again.returncode == 1
    assert again.stderr.strip() == "error: no active key with id 1"


def test_people_show_json_by_any_id(database_url: str) -> None:
    with Shop.open(database_url) as shop:
        shop.page("Home", anonymous_id="anon-7")
        shop.identify(user_id="17850", anonymous_id="anon-7", traits={"email": "ann@example.com"})
        shop.track("Order Completed", user_id="17850")
    for ref in ("17850", "anon-7", "ann@example.com"):
        done = run("people", "show", ref, "--json", "--db", database_url)
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout)
        assert shown["event_count"] == 3
        assert shown["event_counts"] == {"identify": 1, "page": 1, "track": 1}
        assert {(i["kind"], i["value"]) for i in shown["ids"]} == {
            ("anonymous_id", "anon-7"),
            ("user_id", "17850"),
            ("email", "ann@example.com"),
        }
        assert shown["last_seen"] is not None


def test_people_show_in_words(sqlite_url: str) -> None:
    with Shop.open(sqlite_url) as shop:
        shop.track("Order Completed", user_id="17850")
    done = run("people", "show", "17850", "--db", sqlite_url)
    assert done.returncode == 0
    assert "Events: 1 (1 track)" in done.stdout
    assert "17850" in done.stdout


def test_piped_tables_are_never_cut_short(sqlite_url: str) -> None:
    """Regression: piped output (no terminal, no COLUMNS) was cut at 80 columns, cells ending in "…"."""
    long_word = "Extraordinarily-long-handwritten-gift-tag-preference-" * 2
    with Shop.open(sqlite_url) as shop:
        shop.identify(user_id="17850", traits={"wrapping": long_word})
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "SHOPKEEPER_DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "people", "show", "17850", "--db", sqlite_url],
        capture_output=True,
        text=True,
        env={**environment, "NO_COLOR": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    assert long_word in done.stdout  # on one line, not wrapped either


def test_people_help_names_every_people_command() -> None:
    """Regression: `people --help` said only "Look up people and the merges of their identities"."""
    done = run("people", "--help")
    assert done.returncode == 0, done.stderr
    summary = done.stdout.split("Options")[0].lower()
    for word in ("consent", "link", "export", "eras"):
        assert word in summary, word


def test_people_merges_lists_merges_and_refusals(sqlite_url: str) -> None:
    with Shop.open(sqlite_url) as shop:
        shop.page(anonymous_id="a")
        shop.page(user_id="u")
        shop.identify(user_id="u", anonymous_id="a")
        shop.identify(user_id="other", anonymous_id="a")
    merges = json.loads(run("people", "merges", "--json", "--db", sqlite_url).stdout)
    assert [m["outcome"] for m in merges] == ["merged", "refused"]


def test_an_unknown_person_is_one_clear_line_and_exit_1(sqlite_url: str) -> None:
    done = run("people", "show", "nobody", "--db", sqlite_url)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no person is known by the id 'nobody'"
    assert "Traceback" not in done.stderr


def test_the_database_url_comes_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    done = run("keys", "create", "--kind", "write", env={"SHOPKEEPER_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize("url", ["nosuchdb://x", "sqlite:////nonexistent-dir/x.db"])
def test_a_bad_database_url_is_a_clear_error(url: str) -> None:
    done = run("keys", "list", "--db", url)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


def test_bad_options_are_usage_errors() -> None:
    done = run("keys", "create", "--kind", "superuser")
    assert done.returncode == 2
    assert "superuser" in done.stderr


def test_serve_refuses_several_workers_on_an_in_memory_database() -> None:
    done = run("serve", "--workers", "2", "--db", "sqlite:///:memory:")
    assert done.returncode == 1
    assert "in-memory SQLite database cannot be shared" in done.stderr
