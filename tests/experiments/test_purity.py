"""The experiments package's numeric core is pure: it never imports the store, the API or the CLI.

(The package's database side, the experiment store and service, lives beside it and may.) Of the rest of
shopkeeper it may use only `shopkeeper.wording`, the counted nouns of its sentences, a leaf that imports
nothing of shopkeeper's."""

from __future__ import annotations

from pathlib import Path

from tests.imports_of import imports_of

import shopkeeper.experiments

PACKAGE = Path(shopkeeper.experiments.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "scipy"}
NUMERIC_CORE = ["assign", "stats", "sequential", "power", "verdict", "analysis", "bandit", "ope"]


def test_experiments_import_only_numpy_scipy_and_themselves() -> None:
    for path in (PACKAGE / f"{name}.py" for name in NUMERIC_CORE):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "shopkeeper":
                allowed = name.startswith("shopkeeper.experiments") or name == "shopkeeper.wording"
                assert allowed, f"{path.name} imports {name}"
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


def test_wording_is_a_leaf() -> None:
    wording = PACKAGE.parent / "wording.py"
    assert not any(name.split(".")[0] == "shopkeeper" for name in imports_of(wording))
