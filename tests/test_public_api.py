"""The package's public surface: `__all__` lists exactly what is public (as httpx checks)."""

from __future__ import annotations

import subprocess
import sys
import types

import shopkeeper


def test_all_matches_the_public_names() -> None:
    # dir(), not vars(): most public names load on first use (the package's __getattr__), so vars() holds
    # only those already used.
    public = {
        name
        for name in dir(shopkeeper)
        if not name.startswith("_") and not isinstance(getattr(shopkeeper, name), types.ModuleType)
    }
    assert set(shopkeeper.__all__) == public
    assert sorted(shopkeeper.__all__) == shopkeeper.__all__


def test_every_public_name_imports_from_a_fresh_process() -> None:
    """Regression: the package's names moved behind a lazy `__getattr__`; `from shopkeeper import X` must
    still work for each, first thing in a process, and a name that is not public must not."""
    names = ", ".join(shopkeeper.__all__)
    code = f"from shopkeeper import {names}\nimport shopkeeper\nassert not hasattr(shopkeeper, 'nothing')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
