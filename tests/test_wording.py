"""Counted nouns: "1 item", never "1 items" (the decide notes said "Left out 1 items")."""

from __future__ import annotations

import pytest

from shopkeeper.wording import counted


@pytest.mark.parametrize(
    ("n", "words", "expected"),
    [
        (0, ("item",), "0 items"),
        (1, ("item",), "1 item"),
        (2, ("item",), "2 items"),
        (1_234, ("event",), "1,234 events"),
        (1, ("person", "people"), "1 person"),
        (3, ("person", "people"), "3 people"),
        (1, ("guess", "guesses"), "1 guess"),
    ],
)
def test_counted(n: int, words: tuple[str, ...], expected: str) -> None:
    assert counted(n, *words) == expected
