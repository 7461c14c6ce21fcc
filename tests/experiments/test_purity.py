"""The experiments package is the pure numeric core: it never imports the store, the API or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import shopkeeper.experiments

PACKAGE = Path(shopkeeper.experiments.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "scipy"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_experiments_import_only_numpy_scipy_and_themselves() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "shopkeeper":
                assert name.startswith("shopkeeper.experiments"), f"{path.name} imports {name}"
            else:
                stdlib = top in {
                    "__future__",
                    "collections",
                    "contextlib",
                    "dataclasses",
                    "functools",
                    "hashlib",
                }
                stdlib |= top in {"math", "typing", "struct"}
                assert stdlib or top in ALLOWED_THIRD_PARTY, f"{path.name} imports {name}"
