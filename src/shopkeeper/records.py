"""Value types that cross module boundaries: what a call returns, never how it is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

IdentityKind = Literal["user_id", "anonymous_id", "email"]
KeyKind = Literal["write", "admin"]


class LinkedPerson(str):
    """The person a verified link token was issued for, passed wherever a person's id goes.

    It is a `str` (it reads `link:<person id>`), so every service that takes an id takes it, but
    `SqlIdentityGraph.find_person` answers it by the internal person id and the generation the link was
    issued at, never by an external id that an `alias` could move to someone else. A person merged away,
    erased, or re-created under the same userId has another generation (or none), and is not found.
    """

    person_id: int
    generation: int

    def __new__(cls, person_id: int, generation: int) -> LinkedPerson:
        linked = super().__new__(cls, f"link:{person_id}")
        linked.person_id = person_id
        linked.generation = generation
        return linked


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one call's messages. `stored + duplicates == received`."""

    received: int
    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class Merge:
    """One stitching decision. `outcome` is `merged`, or `refused` when both sides were known users."""

    id: int
    from_person_id: int
    into_person_id: int
    outcome: Literal["merged", "refused"]
    reason: str
    message_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """What is known about one person: ids, merges, event counts and when they were last seen."""

    person_id: int
    identities: list[Identity]
    merges: list[Merge]
    event_count: int
    event_counts: dict[str, int]
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "person_id": self.person_id,
            "ids": [
                {"kind": i.kind, "value": i.value, "linked_at": i.linked_at.isoformat()}
                for i in self.identities
            ],
            "merges": [merge_to_json(m) for m in self.merges],
            "event_count": self.event_count,
            "event_counts": self.event_counts,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret itself, only its hash and a short prefix to recognise it."""

    id: int
    kind: KeyKind
    prefix: str
    name: str
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin in self.allowed_origins


def merge_to_json(m: Merge) -> dict[str, object]:
    return {
        "id": m.id,
        "from_person_id": m.from_person_id,
        "into_person_id": m.into_person_id,
        "outcome": m.outcome,
        "reason": m.reason,
        "message_id": m.message_id,
        "at": m.at.isoformat(),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Variant:
    variant_id: str
    attributes: dict[str, object]
    price: float | None
    stock: int | None


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    title: str
    category: str
    price: float | None
    currency: str | None
    attributes: dict[str, object]
    created_at: datetime
    updated_at: datetime
    variants: list[Variant]

    def to_json(self) -> dict[str, object]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "category": self.category,
            "price": self.price,
            "currency": self.currency,
            "attributes": self.attributes,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "variants": [
                {"variant_id": v.variant_id, "attributes": v.attributes, "price": v.price, "stock": v.stock}
                for v in self.variants
            ],
        }


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """One change of price or stock. `variant_id` is "" for the item itself."""

    item_id: str
    variant_id: str
    field: Literal["price", "stock"]
    old_value: float | None
    new_value: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int
    changes: int  # price and stock history rows written
