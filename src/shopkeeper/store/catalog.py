"""The catalog in the database: upserts that keep a history of every price and stock change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, or_, select, update

from shopkeeper.errors import NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import item_history, item_variants, items

_CHUNK = 500
_STOCK = (
    select(
        items.c.item_id, items.c.title, items.c.category, item_variants.c.attributes, item_variants.c.stock
    )
    .select_from(items.outerjoin(item_variants, item_variants.c.item_id == items.c.item_id))
    .where(items.c.item_id.in_(bindparam("ids", expanding=True)))
)
# One row of `SqlCatalog.stock`: an item's title and category, and one variant's attributes and stock.
StockRow = tuple[str, str, str, dict[str, Any] | None, int | None]


class NewVariant(Protocol):
    """What the store reads of a variant to upsert (the catalog's `VariantIn` is one)."""

    @property
    def variant_id(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...
    @property
    def price(self) -> float | None: ...
    @property
    def stock(self) -> int | None: ...


class NewItem(Protocol):
    """What the store reads of an item to upsert: checked values, as the catalog's `ItemIn` holds them.
    (The store sits below the catalog, so it names what it needs rather than importing the catalog's type.)"""

    @property
    def item_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def price(self) -> float | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def variants(self) -> Sequence[NewVariant]: ...


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


def _dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class SqlCatalog:
    """Items, variants and their price/stock history. An upsert replaces an item's variants whole."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def upsert(self, new_items: Sequence[NewItem], *, now: datetime | None = None) -> UpsertResult:
        """Create or replace items in one transaction. Unchanged items are left alone, with no history."""
        with write_transaction(self._engine) as conn:
            return self.upsert_in(conn, new_items, now=now)

    def upsert_in(
        self, conn: Connection, new_items: Sequence[NewItem], *, now: datetime | None = None
    ) -> UpsertResult:
        now = now or datetime.now(UTC)
        created = updated = unchanged = 0
        history: list[dict[str, Any]] = []
        for start in range(0, len(new_items), _CHUNK):
            chunk = new_items[start : start + _CHUNK]
            ids = [i.item_id for i in chunk]
            current = {r.item_id: r for r in conn.execute(select(items).where(items.c.item_id.in_(ids)))}
            variants: dict[str, dict[str, Any]] = {}
            for r in conn.execute(select(item_variants).where(item_variants.c.item_id.in_(ids))):
                variants.setdefault(r.item_id, {})[r.variant_id] = r
            inserts: list[dict[str, Any]] = []
            variant_rows: list[dict[str, Any]] = []
            for item in chunk:
                row = {
                    "item_id": item.item_id,
                    "title": item.title,
                    "category": item.category,
                    "price": item.price,
                    "currency": item.currency,
                    "attributes": _dumps(item.attributes),
                }
                new_variants = {
                    v.variant_id: {
                        "item_id": item.item_id,
                        "variant_id": v.variant_id,
                        "attributes": _dumps(v.attributes),
                        "price": v.price,
                        "stock": v.stock,
                    }
                    for v in item.variants
                }
                old = current.get(item.item_id)
                old_variants = variants.get(item.item_id, {})
                history += _changes(item.item_id, old, old_variants, row, new_variants, now)
                if old is None:
                    created += 1
                    inserts.append({**row, "created_at": item.created_at or now, "updated_at": now})
                    variant_rows += new_variants.values()
                    continue
                same_item = all(getattr(old, k) == v for k, v in row.items())
                same_variants = {k: _variant_tuple(v) for k, v in old_variants.items()} == {
                    k: _variant_tuple(v) for k, v in new_variants.items()
                }
                if (
                    same_item
                    and same_variants
                    and (item.created_at is None or item.created_at == old.created_at)
                ):
                    unchanged += 1
                    continue
                updated += 1
                values = {**row, "updated_at": now}
                if item.created_at is not None:
                    values["created_at"] = item.created_at
                conn.execute(update(items).where(items.c.item_id == item.item_id).values(**values))
                if not same_variants:
                    conn.execute(delete(item_variants).where(item_variants.c.item_id == item.item_id))
                    variant_rows += new_variants.values()
            if inserts:
                conn.execute(insert(items), inserts)
            if variant_rows:
                conn.execute(insert(item_variants), variant_rows)
        if history:
            conn.execute(insert(item_history), history)
        return UpsertResult(created=created, updated=updated, unchanged=unchanged, changes=len(history))

    def get(self, item_id: str) -> Item:
        found = self.get_many([item_id])
        if item_id not in found:
            raise NotFound(f"no item with id {item_id!r}", field="item_id")
        return found[item_id]

    def get_many(self, item_ids: Sequence[str]) -> dict[str, Item]:
        result: dict[str, Item] = {}
        item_ids = [
            i for i in item_ids if "\x00" not in i
        ]  # never stored; PostgreSQL can't even compare them
        with self._engine.connect() as conn:
            for start in range(0, len(item_ids), _CHUNK):
                ids = list(item_ids[start : start + _CHUNK])
                variants: dict[str, list[Variant]] = {}
                query = select(item_variants).where(item_variants.c.item_id.in_(ids))
                for r in conn.execute(query.order_by(item_variants.c.variant_id)):
                    variants.setdefault(r.item_id, []).append(
                        Variant(r.variant_id, orjson.loads(r.attributes), r.price, r.stock)
                    )
                for r in conn.execute(select(items).where(items.c.item_id.in_(ids))):
                    result[r.item_id] = Item(
                        item_id=r.item_id,
                        title=r.title,
                        category=r.category,
                        price=r.price,
                        currency=r.currency,
                        attributes=orjson.loads(r.attributes),
                        created_at=r.created_at,
                        updated_at=r.updated_at,
                        variants=variants.get(r.item_id, []),
                    )
        return result

    def price(self, item_id: str) -> float | None:
        """The item's catalog price (None: no such item, or no price), in one indexed read."""
        if "\x00" in item_id:
            return None
        with self._engine.connect() as conn:
            found = conn.scalar(select(items.c.price).where(items.c.item_id == item_id))
        return None if found is None else float(found)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return len(conn.execute(select(items.c.item_id)).all())

    def categories(self) -> dict[str, str]:
        """Every item's category path, by item id: what profiles and recommenders group by."""
        with self._engine.connect() as conn:
            return {r.item_id: r.category for r in conn.execute(select(items.c.item_id, items.c.category))}

    def stock(self, item_ids: Sequence[str]) -> list[StockRow]:
        """These items' titles and categories with each variant's attributes and stock, in one query
        (what decide's rules read). An item with no variants comes once, with None for both; items not
        in the catalog are left out."""
        if not item_ids:
            return []
        with self._engine.connect() as conn:
            return [
                (item_id, title, category, None if attributes is None else orjson.loads(attributes), stock)
                for item_id, title, category, attributes, stock in conn.execute(
                    _STOCK, {"ids": list(item_ids)}
                )
            ]

    def in_category(self, category: str) -> list[tuple[str, str]]:
        """`(item_id, category)` of the items whose category is `category` or under it ("Bags > Jumbo
        bags" is under "Bags"), compared without regard to case; `%` and `_` in it are plain characters."""
        lowered = category.strip().lower()
        escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = select(items.c.item_id, items.c.category).where(
            or_(
                func.lower(items.c.category) == lowered,
                func.lower(items.c.category).like(escaped + " > %", escape="\\"),
            )
        )
        with self._engine.connect() as conn:
            return [(item_id, item_category) for item_id, item_category in conn.execute(query)]

    def history(self, item_id: str | None = None, *, since: datetime | None = None) -> list[CatalogChange]:
        """Price and stock changes, oldest first; of one item, or since a time."""
        query = select(item_history).order_by(item_history.c.at, item_history.c.id)
        if item_id is not None:
            query = query.where(item_history.c.item_id == item_id.replace("\x00", ""))
        if since is not None:
            query = query.where(item_history.c.at >= since)
        with self._engine.connect() as conn:
            return [
                CatalogChange(r.item_id, r.variant_id, _field(r.field), r.old_value, r.new_value, r.at)
                for r in conn.execute(query)
            ]


def _field(value: str) -> Literal["price", "stock"]:
    return "stock" if value == "stock" else "price"


def _variant_tuple(v: Any) -> tuple[Any, ...]:
    if isinstance(v, dict):
        return (v["attributes"], v["price"], v["stock"])
    return (v.attributes, v.price, v.stock)


def _changes(
    item_id: str,
    old: Any,
    old_variants: dict[str, Any],
    row: dict[str, Any],
    new_variants: dict[str, dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """History rows for what moved: the item's price, and each variant's price and stock."""
    found: list[dict[str, Any]] = []

    def note(variant_id: str, field: str, before: float | None, after: float | None) -> None:
        if before != after:
            found.append(
                {
                    "item_id": item_id,
                    "variant_id": variant_id,
                    "field": field,
                    "old_value": before,
                    "new_value": after,
                    "at": now,
                }
            )

    note("", "price", None if old is None else old.price, row["price"])
    for variant_id, new in new_variants.items():
        before = old_variants.get(variant_id)
        note(variant_id, "price", None if before is None else before.price, new["price"])
        note(variant_id, "stock", None if before is None else before.stock, new["stock"])
    for variant_id, before in old_variants.items():
        if variant_id not in new_variants and before.stock:
            note(variant_id, "stock", before.stock, None)
    return found


def profile_entries(conn: Connection, item_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Category and attributes of these items: what the profile builder needs, read in its transaction."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    wanted = list(item_ids)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        query = select(items.c.item_id, items.c.category, items.c.attributes).where(
            items.c.item_id.in_(chunk)
        )
        for r in conn.execute(query):
            found[r.item_id] = (r.category, orjson.loads(r.attributes))
    return found
