"""The recommenders are the pure numeric core: arrays in, arrays out. Of shopkeeper they import only
themselves and its errors; never the store, the services, the API or the CLI (issue 13, item 5)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.imports_of import imports_of

import shopkeeper.recommend

PACKAGE = Path(shopkeeper.recommend.__file__).parent
NUMERIC = {"numpy", "scipy", "sklearn", "implicit", "threadpoolctl"}


def test_recommend_imports_only_numeric_libraries_itself_and_the_errors() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "shopkeeper":
                allowed = name.startswith("shopkeeper.recommend") or name == "shopkeeper.errors"
                assert allowed, f"{path.relative_to(PACKAGE)} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in NUMERIC, f"{path.name} imports {name}"
