"""Every SQL statement lives in `shopkeeper.store`, where the two-backend contract suite covers it.

Outside `store/`, a module may hold a connection or an engine (to scope a read or a write transaction,
`store.engine.write_transaction`) and catch SQLAlchemy's errors, but it may not build a statement
(`select`, `insert`, `text`, `func`, ...), name a table (`shopkeeper.store.schema`), or run SQL
(`execute`, `scalar`, `scalars`, `exec_driver_sql`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import shopkeeper

PACKAGE = Path(shopkeeper.__file__).parent

# Modules that still run SQL of their own (none since issue 13, item 2). Should one ever be needed, the
# test fails for an entry that no longer runs any, so that the list only ever shrinks.
EXEMPT: set[str] = set()

# What a module outside the store may take from SQLAlchemy: types, URLs and errors, no statements.
ALLOWED = {
    "sqlalchemy": {"Connection", "Engine", "Dialect"},
    "sqlalchemy.engine": {"Connection", "Engine", "URL", "make_url"},
    "sqlalchemy.exc": None,  # any error class
}
RUNS_SQL = {"execute", "exec_driver_sql", "scalar", "scalars"}


def _problems(source: str) -> list[str]:
    """What in this module's source builds, names or runs SQL, by line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy" and alias.name not in ALLOWED:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name.startswith("shopkeeper.store.schema"):
                    found.append(f"line {node.lineno}: import {alias.name} (a table)")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "sqlalchemy":
                allowed = ALLOWED.get(node.module, set())
                names = [a.name for a in node.names]
                if allowed is not None and not set(names) <= allowed:
                    found.append(f"line {node.lineno}: from {node.module} import {', '.join(names)}")
            if node.module == "shopkeeper.store.schema" or (
                node.module == "shopkeeper.store" and any(a.name == "schema" for a in node.names)
            ):
                found.append(f"line {node.lineno}: from {node.module} import ... (a table)")
        called = node.func if isinstance(node, ast.Call) else None
        if isinstance(called, ast.Attribute) and called.attr in RUNS_SQL:
            found.append(f"line {called.lineno}: .{called.attr}(...)")
    return found


def _modules() -> dict[str, Path]:
    return {
        path.relative_to(PACKAGE).as_posix(): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith("store/")
    }


def _covers(entry: str, name: str) -> bool:
    """Whether an `EXEMPT` entry (a module, or a package ending in /) covers the module `name`."""
    return name == entry or (entry.endswith("/") and name.startswith(entry))


def test_sql_runs_only_in_the_store() -> None:
    offenders = {}
    for name, path in _modules().items():
        problems = _problems(path.read_text(encoding="utf-8"))
        if problems and not any(_covers(entry, name) for entry in EXEMPT):
            offenders[name] = problems
    assert not offenders, "SQL outside shopkeeper.store (move it into a store module): " + "; ".join(
        f"{name}: {', '.join(problems)}" for name, problems in offenders.items()
    )


def test_every_exemption_is_still_needed() -> None:
    modules = _modules()
    for entry in sorted(EXEMPT):
        covered = [name for name in modules if _covers(entry, name)]
        assert any(_problems(modules[name].read_text(encoding="utf-8")) for name in covered), (
            f"{entry} runs no SQL of its own any more (or is gone): remove it from EXEMPT"
        )


def test_the_check_sees_sql() -> None:
    """The check itself: a statement built and run is caught, a transaction scoped and an error caught
    are not."""
    caught = _problems(
        "from sqlalchemy import Connection, select\n"
        "from sqlalchemy.exc import OperationalError\n"
        "from shopkeeper.store.schema import people\n"
        "def f(conn: Connection) -> None:\n"
        "    conn.execute(select(people))\n"
    )
    assert sorted(caught) == [
        "line 1: from sqlalchemy import Connection, select",
        "line 3: from shopkeeper.store.schema import ... (a table)",
        "line 5: .execute(...)",
    ]
