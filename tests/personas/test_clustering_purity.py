"""The personas' numeric core is pure: numpy, scipy, scikit-learn, the stdlib and shopkeeper's errors only.

(The package's service modules, when they arrive, may use the store; these modules never do.)"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.imports_of import imports_of

import shopkeeper.personas

PACKAGE = Path(shopkeeper.personas.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "scipy", "sklearn"}
NUMERIC_CORE = ["clustering", "features", "rules", "naming", "stability"]


def test_the_personas_core_imports_only_numpy_scipy_sklearn_and_itself() -> None:
    for path in (PACKAGE / f"{name}.py" for name in NUMERIC_CORE):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "shopkeeper":
                allowed = name.startswith("shopkeeper.personas.") or name == "shopkeeper.errors"
                assert allowed, f"{path.name} imports {name}"
                if name.startswith("shopkeeper.personas."):
                    assert name.removeprefix("shopkeeper.personas.") in NUMERIC_CORE, (
                        f"{path.name} imports {name}"
                    )
            else:
                assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                    f"{path.name} imports {name}"
                )
