"""What the content tests share: the issue's own example template, and where the shipped examples are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopkeeper.content import EXAMPLES
from shopkeeper.content.slots import Checked, check

__all__ = ["BACK_IN_STOCK", "EXAMPLES", "NOW", "PLACEHOLDERS", "stated"]

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # the slot tests' clock
# Placeholder names a shop's records hold where a name should be
PLACEHOLDERS = ["test", "asdf", "n/a", "na", "customer", "none", "null", "x", "xx", "unknown", "user"]
PLACEHOLDERS += ["guest", "name", "first name", "fname", "-", "."]


def stated(slot: str, value: Any, **options: Any) -> Checked:
    """`check` for a value the person stated, as of `NOW`."""
    return check(slot, value, source="stated", now=NOW, **options)


BACK_IN_STOCK: dict[str, Any] = {  # issue 14's example, as its outside contract gives it
    "channel": "email",
    "subject": "{{ first_name }}, it's back in your size",
    "preheader": "The {{ item.title }} you asked about",
    "html": "<p>Hi {{ first_name }},</p><p>{{ item.title }} is back in {{ size }}.</p>",
    "text": None,
    "fields": {
        "first_name": {
            "slot": "first_name",
            "from": "firstName",
            "fallback": "there",
            "weakest_source": "observed",
        },
        "size": {"slot": "size", "from": "size", "fallback": "abort", "weakest_source": "stated"},
    },
    "variants": {"b": {"subject": "Good news, {{ first_name }}"}},
}
