"""Counted nouns for sentences that people read: "1 item", "2 items", never "1 items"."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` with its noun in the right number, thousands separated: counted(1, "item") is "1 item"."""
    noun = singular if n == 1 else (plural if plural is not None else f"{singular}s")
    return f"{n:,} {noun}"
