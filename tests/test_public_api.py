"""The package's public surface: `__all__` lists exactly what is public (as httpx checks)."""

from __future__ import annotations

import types

import shopkeeper


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(shopkeeper).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(shopkeeper.__all__) == public
    assert sorted(shopkeeper.__all__) == shopkeeper.__all__
