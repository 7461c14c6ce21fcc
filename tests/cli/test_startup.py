"""`shopkeeper` starts without the modules only some commands use (issue 13, item 10): no recommender, no
numpy, scipy or scikit-learn, no web server, and no alembic when the database is up to date; and `--help`
without the store, the settings or pydantic.

Regression: every command imported all of them at start, and `shopkeeper --help` took 3 s. This checks what
is imported, never how long it takes (benchmarks/cli_start.py times it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from shopkeeper import Shop
from shopkeeper.cli import import_orders as import_orders_command
from shopkeeper.events import importers

HEAVY_PACKAGES = {
    "sklearn",
    "implicit",
    "scipy",
    "numpy",
    "pandas",
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",
}
# decide's pipeline, rules and cache use the recommenders; its log, reasons and placements are light (a
# Decision is part of the public API that `import shopkeeper` loads).
HEAVY_MODULES = (
    "shopkeeper.recommend",
    "shopkeeper.decide.pipeline",
    "shopkeeper.decide.rules",
    "shopkeeper.decide.cache",
    "shopkeeper.training",
    "shopkeeper.api",
)

# Runs the command as its entry point does, then writes every module it imported to the file named by argv[1].
RUN = """
import sys
modules_file, sys.argv = sys.argv[1], ["shopkeeper", *sys.argv[2:]]
from shopkeeper.cli.main import main
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
with open(modules_file, "w") as out:
    out.write("\\n".join(sys.modules))
"""


def modules_of(tmp_path: Path, *args: str) -> list[str]:
    """Every module that `shopkeeper ARGS` imported, run as its own process."""
    modules_file = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if k != "SHOPKEEPER_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(modules_file), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return modules_file.read_text().split()


def heavy_modules_of(tmp_path: Path, *args: str) -> list[str]:
    loaded = modules_of(tmp_path, *args)
    return sorted(m for m in loaded if m.split(".")[0] in HEAVY_PACKAGES or m.startswith(HEAVY_MODULES))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["keys", "create", "--kind", "write", "--name", "startup", "--db", "DB"],
        ["people", "show", "ann", "--db", "DB"],
        ["people", "show", "--help"],
    ],
    ids=" ".join,
)
def test_a_command_starts_without_the_recommenders_scipy_or_the_web_server(
    tmp_path: Path, args: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with Shop.open(url) as shop:  # up to date, with one person
        shop.identify(user_id="ann", traits={"size": "M"})
    assert heavy_modules_of(tmp_path, *[url if arg == "DB" else arg for arg in args]) == []


def test_help_starts_without_the_store_the_settings_or_pydantic(tmp_path: Path) -> None:
    """Regression: the package's `__init__` and the commands' shared module imported the shop, and with it
    the store, pydantic and the settings, before `--help` could print."""
    loaded = modules_of(tmp_path, "--help")
    libraries = {"sqlalchemy", "pydantic", "pydantic_settings"}
    assert sorted(m for m in loaded if m.split(".")[0] in libraries) == []
    assert sorted(m for m in loaded if m.startswith(("shopkeeper.store", "shopkeeper.shop"))) == []


def test_the_import_command_offers_the_importers_formats() -> None:
    """`import orders --format` spells the importers' formats out, so that the importers load only for an
    import; both must name the same ones."""
    assert get_args(import_orders_command.Format) == get_args(importers.Format)
