"""What one delivery attempt came to, and the one way its detail is written: short, on one line, and
without an address in it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["sent", "retry", "failed"]

DETAIL_LIMIT = 200

# Anything shaped like an address, with its angle brackets when it has them: `<bob@example.com>`,
# `bob@example.com`, `"bob"@example.com`.
_ADDRESS = re.compile(r"<?[^\s<>@,;]+@[^\s<>@,;]+>?")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one delivery attempt came to.

    `outcome`: `sent`; `retry`, a temporary failure worth trying again later; or `failed`, for good.
    `detail`: the server's reply code and text, or the error's class and message (see `safe_detail`):
    never the message's body, never an address or other personal data.
    """

    outcome: Outcome
    detail: str


def safe_detail(text: str) -> str:
    """`text` made fit to store as a delivery's detail: every address replaced by `<address>`, control
    characters and line breaks by spaces, runs of spaces squeezed, and cut to DETAIL_LIMIT characters.

    Addresses go first, so that the cut can never leave half an address that no longer looks like one.
    """
    text = _ADDRESS.sub("<address>", text)
    text = "".join(" " if unicodedata.category(char)[0] in "CZ" else char for char in text)
    return " ".join(text.split())[:DETAIL_LIMIT]
