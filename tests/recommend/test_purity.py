"""The recommenders are the pure numeric core: arrays in, arrays out. Of shopkeeper they import only
themselves and its errors; never the store, the services, the API or the CLI (issue 13, item 5)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import shopkeeper.recommend

PACKAGE = Path(shopkeeper.recommend.__file__).parent
NUMERIC = {"numpy", "scipy", "sklearn", "implicit", "threadpoolctl"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_recommend_imports_only_numeric_libraries_itself_and_the_errors() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "shopkeeper":
                allowed = name.startswith("shopkeeper.recommend") or name == "shopkeeper.errors"
                assert allowed, f"{path.relative_to(PACKAGE)} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in NUMERIC, f"{path.name} imports {name}"
