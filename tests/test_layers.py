"""The layers of docs/architecture.md hold: each package imports only the layers below it (import-linter,
configured in pyproject.toml), and the packages that issue 13 untangled stay untangled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layers_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("catalog", "events"),
        ("events", "privacy"),
        ("privacy", "profiles"),
        ("profiles", "store"),
        ("recommend.blend", "recommend.registry"),
        ("recommend.default", "recommend.registry"),
    ],
)
def test_no_cycle_between(one: str, other: str) -> None:
    graph = grimp.build_graph("shopkeeper")
    a, b = f"shopkeeper.{one}", f"shopkeeper.{other}"
    packages = graph.is_module_squashed(a) is False and bool(graph.find_children(a))
    there = graph.chain_exists(a, b, as_packages=packages)
    back = graph.chain_exists(b, a, as_packages=packages)
    assert not (there and back), f"{one} and {other} import each other"
