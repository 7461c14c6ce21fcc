"""`shopkeeper demo`, the main job, as a new user runs it: the bundled sample imported, the default model
trained, real customers' picks shown with reasons; then what that shop decides, reason by reason."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopkeeper import Shop
from shopkeeper.cli._running import recorded
from shopkeeper.cli.main import app
from shopkeeper.store.schema import identities


@pytest.mark.slow
def test_the_demo_trains_the_reranker_and_explains_every_pick(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SHOPKEEPER_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "demo", "--no-serve", "--db", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Customer 17850" in done.stdout
    assert "The sample's real orders, up to 30 Sep 2011, are replayed shifted by" in done.stdout
    assert "Because you bought" in done.stdout
    assert "A first-time visitor" in done.stdout and "Popular with customers right now" in done.stdout
    assert "Serving on" not in done.stdout

    shop = Shop.open(url)
    try:
        with shop.store.engine.connect() as conn:
            users = [row.value for row in conn.execute(identities.select().limit(150))]
        signals: collections.Counter[str] = collections.Counter()
        for user in users:
            decision = shop.decide(user_id=user, placement="new_for_you")
            assert decision.model_version == 1
            for item in decision.items:
                provenance = item.reasons[0].provenance
                signals[provenance.get("signal") or provenance["model"]] += 1
        # Things they never bought: like something they bought, bought in the order after it, popular,
        # or the re-ranker's own pick; each says which.
        assert set(signals) <= {"similar_items", "next_order", "popularity", "rerank"}
        assert signals["similar_items"] and signals["next_order"]
    finally:
        shop.close()


def _demo(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["demo", *args], env={"NO_COLOR": "1", "COLUMNS": "200"})
    return result.exit_code, result.stdout


def test_a_second_demo_while_the_first_serves_says_so_and_changes_nothing(tmp_path: Path) -> None:
    """Regression: a second `./scripts/run` while a server ran imported and trained again, and printed
    no keys and no hint. Now it names the running server and how to get a key, and stops."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with recorded(url, "http://127.0.0.1:9123"):
        code, out = _demo("--db", url)
    assert code == 1
    assert "already being served at http://127.0.0.1:9123" in out
    assert f"process {os.getpid()}" in out
    assert "Nothing was changed" in out
    assert f"shopkeeper keys create --kind admin --db {url}" in out
    assert not (tmp_path / "demo.db").exists()  # nothing imported, nothing trained


def test_the_demo_on_a_taken_port_says_so_before_doing_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = _demo("--db", url, "--port", str(port))
    assert code == 1
    assert f"Another program already listens on http://127.0.0.1:{port}" in out
    assert "--port" in out
    assert not (tmp_path / "demo.db").exists()
