"""Sensitive categories: what copy never mentions when it was guessed (health, money troubles, children,
religion, ...). Matched word by word on trait keys, item categories and values, so `health_conditions`,
`Baby > Toys` and `pregnancyTests` match, and `healthy` or `creditcard` do not mislead in either way: the
shop's list is words, and a word matches only a whole word (camelCase and snake_case are split)."""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_SENSITIVE = (
    "health,medical,medicine,medication,pharmacy,illness,disease,diagnosis,therapy,pregnancy,pregnant,"
    "fertility,baby,babies,child,children,kid,kids,religion,religious,faith,sexuality,sexual,adult,"
    "lingerie,contraception,finance,finances,debt,debts,loan,loans,credit,bankruptcy,politics,political,"
    "ethnicity,disability,addiction,alcohol,gambling,weight"
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+", re.UNICODE)


class Sensitive:
    """The shop's sensitive categories (`SHOPKEEPER_SENSITIVE_CATEGORIES`, comma-separated words)."""

    def __init__(self, words: str | Iterable[str] = DEFAULT_SENSITIVE) -> None:
        listed = words.split(",") if isinstance(words, str) else list(words)
        self.words = frozenset(w.strip().casefold() for w in listed if w.strip())

    def match(self, *texts: object) -> str | None:
        """The first sensitive word in any of `texts` (strings, or lists of them), or None."""
        for text in texts:
            if isinstance(text, list | tuple):
                found = self.match(*text)
            elif isinstance(text, str):
                found = next((w for w in words_of(text) if w in self.words), None)
            else:
                found = None
            if found is not None:
                return found
        return None


def words_of(text: str) -> list[str]:
    """`health_conditions` -> health, conditions; `pregnancyTests` -> pregnancy, tests; `Baby > Toys`."""
    return [w.casefold() for w in _WORD.findall(text)]
