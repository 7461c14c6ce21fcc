"""`shopkeeper people link|export|erase|consent` and `maintenance purge`, as a user runs them."""

from __future__ import annotations

import json

import httpx
from tests.cli.test_cli import run
from tests.conftest import serving
from tests.privacy.support import EMAIL, OTHER, PERSON, seed
from typer.testing import CliRunner

from shopkeeper import Shop
from shopkeeper.cli._running import recorded, running
from shopkeeper.cli.main import app
from shopkeeper.errors import ShopkeeperError
from shopkeeper.store import Store


class Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def call(*args: str) -> Done:
    """The CLI in process (a new Python per call costs seconds); `run` does it as a real process once."""
    result = CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", "COLUMNS": "200"})
    if isinstance(result.exception, ShopkeeperError):  # what `main()` prints, with exit code 1
        return Done(1, result.stdout, f"error: {result.exception.message}")
    return Done(result.exit_code, result.stdout, "")


def test_consent_export_link_and_erase(sqlite_url: str) -> None:
    with Shop.open(sqlite_url) as shop:
        seed(shop.store)
    done = call(
        "people", "consent", PERSON, "email_marketing=no", "analytics=yes", "--json", "--db", sqlite_url
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["purposes"]["email_marketing"]["granted"] is False
    assert [h["channel"] for h in body["history"]] == ["cli", "cli"]
    shown = call("people", "consent", PERSON, "--db", sqlite_url)
    assert "email_marketing" in shown.stdout and "2 recorded changes" in shown.stdout
    bad = run("people", "consent", PERSON, "email_marketing=maybe", "--db", sqlite_url)
    assert bad.returncode == 1 and "PURPOSE=yes" in bad.stderr
    unknown = call("people", "consent", PERSON, "telepathy=yes", "--db", sqlite_url)
    assert unknown.returncode == 1 and "unknown purpose" in unknown.stderr

    exported = json.loads(call("people", "export", EMAIL, "--db", sqlite_url).stdout)
    assert len(exported["events"]) >= 6 and exported["summary"].startswith("We hold")

    made = call("people", "link", PERSON, "--base-url", "https://shop.example", "--json", "--db", sqlite_url)
    url = json.loads(made.stdout)["url"]
    assert url.startswith("https://shop.example/preferences#token=pt2.")
    store = Store.open(sqlite_url)
    try:
        with serving(store) as base:  # the link the CLI signed opens this person's data
            token = url.split("#token=")[1]
            me = httpx.get(f"{base}/v1/people/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and any(i["value"] == PERSON for i in me.json()["ids"])
    finally:
        store.close()
    assert call("people", "link", "nobody", "--db", sqlite_url).returncode == 1

    refused = call("people", "erase", PERSON, "--db", sqlite_url)  # no --yes and no terminal: nothing happens
    assert refused.returncode == 1
    erased = call("people", "erase", PERSON, "--yes", "--json", "--db", sqlite_url)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["deleted"]["identities"] == 3
    gone = run("people", "show", EMAIL, "--db", sqlite_url)
    assert gone.returncode == 1 and "no person" in gone.stderr
    assert call("people", "show", OTHER, "--db", sqlite_url).returncode == 0


def test_maintenance_purge_is_idempotent(sqlite_url: str) -> None:
    with Shop.open(sqlite_url) as shop:
        seed(shop.store)  # events from 2026-02 and 2026-03: older than 200 days on 2026-11-23 and later
    first = json.loads(call("maintenance", "purge", "--days", "200", "--json", "--db", sqlite_url).stdout)
    assert first["events"] >= 8
    second = json.loads(call("maintenance", "purge", "--days", "200", "--json", "--db", sqlite_url).stdout)
    assert second["events"] == 0 and second["decisions"] == 0
    words = call("maintenance", "purge", "--db", sqlite_url)
    assert words.returncode == 0 and "Purged 0 events" in words.stdout


def _link(sqlite_url: str, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["people", "link", PERSON, "--db", sqlite_url, *extra],
        env={"NO_COLOR": "1", "COLUMNS": "200", "SHOPKEEPER_PUBLIC_URL": "", **(env or {})},
    )
    return result.exit_code, result.stdout


def test_link_is_on_the_port_the_server_really_uses(sqlite_url: str) -> None:
    """Regression: `people link` printed a :8000 URL whatever port the server used."""
    store = Store.open(sqlite_url)
    seed(store)
    store.close()
    # No server: the configured port, and a note saying the link assumes it.
    code, out = _link(sqlite_url, env={"SHOPKEEPER_PORT": "9001"})
    assert code == 0, out
    assert out.startswith("http://127.0.0.1:9001/preferences#token=")
    assert "No server is running on this database" in out
    # A server running on this database (`serve` and `demo` record themselves beside a SQLite file).
    with recorded(sqlite_url, "http://127.0.0.1:9123"):
        code, out = _link(sqlite_url, "--json")
        assert code == 0, out
        assert json.loads(out)["url"].startswith("http://127.0.0.1:9123/preferences#token=")
        # The shop's public address, when given, wins.
        code, out = _link(sqlite_url, "--json", env={"SHOPKEEPER_PUBLIC_URL": "https://shop.example"})
        assert json.loads(out)["url"].startswith("https://shop.example/preferences#token=")
    # The server stopped: its record is gone.
    assert running(sqlite_url) is None
    code, out = _link(sqlite_url, "--json")
    assert json.loads(out)["url"].startswith("http://127.0.0.1:8000/preferences#token=")
