"""What every command shares: the `--db` and `--json` options, settings, the shop, and printing."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from shopkeeper.settings import Settings
    from shopkeeper.shop import Shop
    from shopkeeper.store import Store

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL, e.g. sqlite:///shop.db or postgresql+psycopg://host/db "
        "(default: env SHOPKEEPER_DATABASE_URL, else sqlite:///shopkeeper.db)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

# Piped or redirected output has no terminal width to fit: rich would then assume 80 columns and cut
# table cells short ("conve…"). Such output is as wide as its content instead, unless COLUMNS says.
PIPED_WIDTH = 10_000


def _stdout_console() -> Console:
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, soft_wrap=True, width=PIPED_WIDTH if piped else None)


console = _stdout_console()


# The settings, the shop and the store load when a command first uses them, not when the CLI starts:
# `shopkeeper --help` needs none of them (issue 13, item 10; tests/cli/test_startup.py).


def settings_for(db: str | None) -> Settings:
    from shopkeeper.settings import Settings  # noqa: PLC0415 (pydantic-settings: on first use)

    return Settings().with_database(db)


def open_shop(db: str | None) -> Shop:
    """The shop at `--db`, built as the server builds its own (`Shop.from_settings`). Close it after."""
    from shopkeeper.shop import Shop  # noqa: PLC0415 (the services: on first use)

    return Shop.from_settings(settings_for(db))


def open_store(db: str | None, *, bulk: bool = False) -> Store:
    """Only the store at `--db`, opened as the shop opens it: for a command that uses no service.
    `bulk`: see `shopkeeper.shop.open_store` (call `Store.sync()` before reporting success)."""
    from shopkeeper.shop import open_store as open_settings_store  # noqa: PLC0415 (on first use)

    return open_settings_store(settings_for(db), bulk=bulk)


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """A bulk command's work: its millions of short-lived objects (rows, orders, messages) hold no
    reference cycles, so the cyclic collector, which would walk them all again and again, only costs
    time (a second of the Online Retail import's seven). Reference counting still frees them; the
    collector runs again when the work is done. For a command's main thread only: the switch is the
    process's."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def safe_url(url: str) -> str:
    """The URL with any password hidden, for printing."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 (sqlalchemy: on first use)

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
