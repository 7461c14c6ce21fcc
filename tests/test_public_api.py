"""The package's public surface: `__all__` lists exactly what is public (as httpx checks)."""

from __future__ import annotations

import shopkeeper


def test_all_matches_the_public_names() -> None:
    public = {name for name in dir(shopkeeper) if not name.startswith("_")}
    submodules = {"errors", "records", "settings", "shop", "store", "events", "api", "cli"}
    assert set(shopkeeper.__all__) == public - submodules
    assert sorted(shopkeeper.__all__) == shopkeeper.__all__
