"""Wishes, the promise ledger: a person's interest in an item, a variant of it, or some attributes of it.

One wish per person and wanted thing (a variant, or a set of attributes such as size and colour). When a
person asks again, through another source, it stays one wish: its evidence lists every source, and the
strongest one is its `source` (stated beats staff beats observed: the person's own words first). A wish
expires (90 days unless it says otherwise), and is closed when its item is bought or the person drops it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator
from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput
from shopkeeper.store.moments import SqlMoments, Variant, Wish

WISH_DAYS = 90
MAX_EVIDENCE = 20
STRENGTH = {"observed": 0, "staff": 1, "stated": 2}
ALIASES = {"color": "colour"}

Short = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class WishIn(BaseModel):
    """`POST /v1/people/{id}/wishes`: a wish as the shop, its staff or its forms record it."""

    model_config = ConfigDict(extra="forbid")

    item_id: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    variant_id: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    attributes: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=64)], Short], Field(max_length=10)
    ] = Field(default_factory=dict)
    source: Literal["stated", "staff", "observed"]
    note: Annotated[StrictStr, Field(max_length=1000)] | None = None
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("item_id", "variant_id", "note")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


def parse_wish(raw: Any) -> WishIn:
    if not isinstance(raw, dict):
        raise InvalidInput("a wish is a JSON object with item_id and source", field="body")
    try:
        return WishIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = "is not a field of a wish" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(f"{path}: {message}", field=path or "body") from None


def normalize(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Attribute names and values as compared: NFC, trimmed, `color` read as `colour`; values casefolded
    only when compared (`matches`), so a wish shows what the person said."""
    found: dict[str, str] = {}
    for key, value in attributes.items():
        name = unicodedata.normalize("NFC", str(key)).strip().casefold()
        found[ALIASES.get(name, name)] = unicodedata.normalize("NFC", str(value)).strip()
    return found


def wanted_key(variant_id: str, attributes: Mapping[str, str]) -> str:
    """What a wish is for, as one key: the variant, or the attributes (sorted, casefolded)."""
    if variant_id:
        return (
            variant_id if len(variant_id) <= 200 else "v:" + hashlib.sha256(variant_id.encode()).hexdigest()
        )
    text = orjson.dumps(
        {k: v.casefold() for k, v in attributes.items()}, option=orjson.OPT_SORT_KEYS
    ).decode()
    return "a:" + (text if len(text) <= 200 else hashlib.sha256(text.encode()).hexdigest())


def matches(wish: Wish, variant: Variant) -> bool:
    """Whether a variant is what the wish asks for: the very variant, or one with every wanted attribute
    (a wish for the item itself, with neither, is met by any of its variants)."""
    if wish.variant_id:
        return wish.variant_id == variant.variant_id
    have = {k: v.casefold() for k, v in normalize(variant.attributes).items()}
    return all(have.get(k) == str(v).casefold() for k, v in normalize(wish.attributes).items())


def one_variant(variants: Sequence[Variant], attributes: Mapping[str, str]) -> str:
    """The variant these attributes name, when exactly one has them all (a wish for "grey, 34" is a
    wish for the grey 34, so that it is one wish with a view of that variant); else ""."""
    if not attributes:
        return ""
    wanted = {k: str(v).casefold() for k, v in normalize(attributes).items()}
    found = [
        v
        for v in variants
        if all(
            {k: str(x).casefold() for k, x in normalize(v.attributes).items()}.get(k) == x
            for k, x in wanted.items()
        )
    ]
    return found[0].variant_id if len(found) == 1 else ""


def record(
    conn: Connection,
    store: SqlMoments,
    person_id: int,
    item_id: str,
    *,
    variant_id: str = "",
    attributes: Mapping[str, Any] | None = None,
    source: str,
    at: datetime,
    message_id: str | None = None,
    note: str | None = None,
    expires_at: datetime | None = None,
) -> Wish:
    """Record a wish, or add this evidence to the person's wish for the same thing; a closed wish asked
    again is open again. Inside the caller's write transaction. Returns the wish as it is now."""
    wanted = normalize(attributes or {})
    key = wanted_key(variant_id, wanted)
    evidence: dict[str, Any] = {"source": source, "at": at.isoformat()}
    if message_id is not None:
        evidence["message_id"] = message_id
    if note:
        evidence["note"] = note
    expires = expires_at or at + timedelta(days=WISH_DAYS)
    found = store.wish(conn, person_id, item_id, key)
    if found is None:
        store.add_wish(
            conn,
            {
                "person_id": person_id,
                "item_id": item_id,
                "variant_id": variant_id,
                "attributes": wanted,
                "wanted": key,
                "source": source,
                "evidence": [evidence],
                "note": note,
                "status": "open",
                "created_at": at,
                "updated_at": at,
                "expires_at": expires,
                "notified_at": None,
            },
        )
    else:
        strongest = source if STRENGTH[source] > STRENGTH[found.source] else found.source
        trail = [*[e for e in found.evidence if e != evidence][-(MAX_EVIDENCE - 1) :], evidence]
        store.update_wish(
            conn,
            found.id,
            {
                "source": strongest,
                "evidence": trail,
                "note": note or found.note,
                "status": "notified" if found.status == "notified" else "open",
                "updated_at": max(at, found.updated_at),
                "expires_at": max(expires, found.expires_at),
            },
        )
    wish = store.wish(conn, person_id, item_id, key)
    assert wish is not None
    return wish


def stated_size(stated: Mapping[str, Any], category: str) -> str | None:
    """The person's stated size for this category (the most specific stated category that holds it),
    else their one stated size."""
    sizes = stated.get("sizes")
    if isinstance(sizes, dict) and category:
        best: tuple[int, str] | None = None
        parts = [p.strip().casefold() for p in category.split(">")]
        for name, size in sizes.items():
            wanted = [p.strip().casefold() for p in str(name).split(">")]
            if wanted == parts[: len(wanted)] or str(name).strip().casefold() in parts:
                depth = len(wanted)
                if best is None or depth > best[0]:
                    best = (depth, str(size))
        if best is not None:
            return best[1]
    size = stated.get("size")
    return str(size) if isinstance(size, str | int) and not isinstance(size, bool) else None
