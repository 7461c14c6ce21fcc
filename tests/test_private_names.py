"""No module imports another's private names (issue 13, item 5): a leading underscore means "only mine"."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_uses(source: str, here: str) -> list[str]:
    """Where the module `here` (its `source`) imports, or reads off an imported module, a private name
    of another shopkeeper module (`from shopkeeper.x import _y`, `from shopkeeper import x; x._y`)."""
    tree = ast.parse(source)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> the shopkeeper module it is
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shopkeeper"):
            for alias in node.names:
                if _private(alias.name) and node.module != here:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif not _private(alias.name):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("shopkeeper") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and modules[node.value.id] != here
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_uses_another_modules_private_names() -> None:
    found = {
        str(path.relative_to(SRC)): uses
        for path in sorted(SRC.rglob("*.py"))
        if (uses := private_uses(path.read_text(encoding="utf-8"), _module_name(path)))
    }
    assert found == {}


def test_the_check_sees_a_private_import() -> None:
    """The check can fail: a module that takes another's private name is caught, both ways; its own
    private names are its own."""
    source = (
        "from shopkeeper.store.engine import _configure_sqlite\n"
        "from shopkeeper.store import engine\n"
        "engine._locked_transaction\n"
        "from shopkeeper.cli._common import console\n"  # a private module's public name is fine
    )
    assert private_uses(source, "shopkeeper.api.app") == [
        "line 1: from shopkeeper.store.engine import _configure_sqlite",
        "line 3: engine._locked_transaction",
    ]
    assert private_uses(source, "shopkeeper.store.engine") == []
