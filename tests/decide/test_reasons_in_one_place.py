"""Every reason decide gives is worded in `shopkeeper.decide.reasons`: no other module builds a `Reason`
(issue 13: the wording was spread over decide.py, rules.py and experiments/service.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import shopkeeper
from shopkeeper.decide import reasons

SOURCE = Path(shopkeeper.__file__).parent


def test_only_the_reasons_module_builds_a_reason() -> None:
    builders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path == Path(reasons.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name == "Reason":
                    builders.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert builders == []
