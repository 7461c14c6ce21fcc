"""Docs that can't go stale: every CLI command and every HTTP route appears in the README."""

from __future__ import annotations

from pathlib import Path

import typer.main

from shopkeeper.api.app import create_app
from shopkeeper.cli.main import app as cli_app
from shopkeeper.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(command: object, prefix: str) -> list[str]:
    if hasattr(command, "commands"):
        found: list[str] = []
        for name, sub in command.commands.items():
            found += _commands(sub, f"{prefix} {name}")
        return found
    return [prefix]


def test_every_cli_command_is_documented() -> None:
    commands = _commands(typer.main.get_command(cli_app), "shopkeeper")
    assert len(commands) >= 5
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


def test_every_http_route_is_documented(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url))
    paths = app.openapi()["paths"]
    assert "/v1/batch" in paths
    missing = [
        f"{method.upper()} {path}"
        for path, ops in paths.items()
        for method in ops
        if f"{method.upper()} {path}" not in README
    ]
    assert missing == []
    app.state.shopkeeper.store.close()


def test_every_setting_is_documented() -> None:
    missing = [name for name in Settings.model_fields if f"SHOPKEEPER_{name.upper()}" not in README]
    assert missing == []


def test_the_preference_centre_promises_nothing_that_does_not_exist() -> None:
    """Regression: the page said its link "comes by email" and spoke of back-in-stock messages; shopkeeper
    sends no messages (yet), so the page must not promise them."""
    centre = Path(__file__).parent.parent / "src" / "shopkeeper" / "api" / "static" / "centre"
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(centre.iterdir())).lower()
    for promise in ("comes by email", "back in stock"):
        assert promise not in text, promise


def test_the_readme_says_no_feature_is_still_to_come() -> None:
    """Regression: it said consent, the preference centre and experiments "arrive in the next releases"."""
    assert "arrive in the next releases" not in README
