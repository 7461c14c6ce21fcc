"""Placements: where a decision is shown (a web slot, an email, a staff call) and the rules it follows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shopkeeper.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Placement:
    """How many items a placement shows and which rules apply after scoring."""

    name: str
    n: int = 10
    max_n: int = 50
    repeats: bool = True  # may it show items the person already bought? (consumables: yes)
    max_per_category: int = 3  # the diversity cap
    in_stock_only: bool = True
    purpose: str | None = None  # the consent a channel that reaches out needs (email_marketing, ...)
    audience: str | None = None  # a saved audience: only its members get personalized picks here


DEFAULT_PLACEMENTS: dict[str, Placement] = {
    p.name: p
    for p in (
        Placement("web", n=10, max_per_category=3),
        Placement("email", n=6, max_per_category=2, purpose="email_marketing"),
        Placement("staff", n=5, max_per_category=5, purpose="staff_outreach"),
        Placement("new_for_you", n=10, repeats=False, max_per_category=2),
    )
}


def placement_for(name: str, placements: dict[str, Placement]) -> Placement:
    if name not in placements:
        known = ", ".join(sorted(placements))
        raise InvalidInput(f"unknown placement {name!r}; known placements: {known}", field="placement")
    return placements[name]


def placements_from(placements_json: str) -> dict[str, Placement]:
    """The built-in placements, with those the `placements_json` setting (SHOPKEEPER_PLACEMENTS_JSON)
    adds or replaces."""
    found = dict(DEFAULT_PLACEMENTS)
    if not placements_json.strip():
        return found
    try:
        raw = json.loads(placements_json)
        for name, options in raw.items():
            found[name] = Placement(name=name, **options)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"SHOPKEEPER_PLACEMENTS_JSON is not valid: {exc}", field="placements_json"
        ) from None
    return found


def with_arm(where: Placement, n: int, options: Mapping[str, Any]) -> tuple[Placement, int]:
    """The placement and size with an experiment arm's options applied (they win over the caller's n)."""
    changes: dict[str, Any] = {k: options[k] for k in ("max_per_category", "repeats") if k in options}
    if "n" in options:
        changes["max_n"] = max(where.max_n, int(options["n"]))
    if changes:
        where = replace(where, **changes)
    return where, int(options.get("n", n))
