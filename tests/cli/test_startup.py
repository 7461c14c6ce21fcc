"""`shopkeeper` starts without the modules only some commands use (issue 13, item 10): no recommender, no
scipy or scikit-learn, no web server, and no alembic when the database is up to date.

Regression: every command imported all of them at start, and `shopkeeper --help` took 3 s. This checks what
is imported, never how long it takes (benchmarks/cli_start.py times it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shopkeeper import Shop

HEAVY_PACKAGES = {"sklearn", "implicit", "scipy", "pandas", "fastapi", "starlette", "uvicorn", "alembic"}
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


def heavy_modules_of(tmp_path: Path, *args: str) -> list[str]:
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
    loaded = modules_file.read_text().split()
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
