"""Import past orders: a file's order lines become catalog items, people and Segment ecommerce events.

1. A format reader puts every row in an `OrderBook`: grouped into orders, or skipped with a reason.
2. Items: every product sold gets an item (title: its most common description; price: the latest; a
   category learned from all the titles, see `shopkeeper.events.importers.categorize`). An item already in the
   catalog is only filled in where it is empty; the import never overwrites what a shop set.
3. Each order becomes one `track` "Order Completed" event, and each return one "Order Refunded" event,
   with a deterministic messageId (`<source>:<order id>`, `<source>:<order id>:refund`). They are written
   in chunks of whole orders, one transaction per chunk, so an order is stored whole or not at all, and a
   second import finds every messageId stored and writes nothing.

An import keeps each order's own date, unless asked to replay (`replay_until`, the demo's sample): then
every date moves by the same whole number of days, so that the newest order falls on the last day up to
`replay_until`. A second replay finds the newest order stored and keeps the shift it was stored with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from sqlalchemy import Dialect

from shopkeeper.events.append import NewEvent, append_messages, new_event
from shopkeeper.events.importers.book import BadRow, Order, OrderBook
from shopkeeper.events.importers.categorize import categorize
from shopkeeper.events.importers.generic import ColumnMapping, read_generic
from shopkeeper.events.importers.online_retail import SOURCE as ONLINE_RETAIL
from shopkeeper.events.importers.online_retail import fill_book, is_online_retail
from shopkeeper.events.importers.source import Source
from shopkeeper.store import Store
from shopkeeper.store.catalog import Item, NewItem, NewVariant
from shopkeeper.store.engine import write_transaction

Format = Literal["online-retail", "generic"]
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
DAY = timedelta(days=1)
CHUNK_ORDERS = 2000
# on_progress(stage, done, total): stage "read" counts bytes of the file, "write" counts orders.
Progress = Callable[[str, int, int | None], None]


@dataclass(slots=True)
class ImportReport:
    """What an import did. `rows_read == rows_imported + rows_already_imported + sum(skipped)`."""

    file: str
    format: Format
    rows_read: int
    rows_imported: int  # lines of the orders this import stored
    rows_already_imported: int  # lines of orders stored by an earlier import
    skipped: dict[str, int]  # reason -> rows
    bad_rows: list[BadRow]  # every skipped row that was wrong, not left out on purpose
    orders: int  # "Order Completed" events stored
    returns: int  # "Order Refunded" events stored
    orders_already_imported: int  # events found stored already (orders and returns)
    people_created: int
    items_created: int
    items_updated: int  # existing items filled in
    items_unchanged: int
    seconds: float
    shifted_days: int = 0  # a replay: days every date moved by (0: the orders' own dates)
    newest_order_at: datetime | None = None  # the file's newest order, as stored (shifted)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "rows_already_imported": self.rows_already_imported,
            "rows_skipped": sum(self.skipped.values()),
            "skipped": dict(sorted(self.skipped.items())),
            "bad_rows": [b.to_json() for b in self.bad_rows],
            "orders": self.orders,
            "returns": self.returns,
            "orders_already_imported": self.orders_already_imported,
            "people_created": self.people_created,
            "items_created": self.items_created,
            "items_updated": self.items_updated,
            "items_unchanged": self.items_unchanged,
            "seconds": round(self.seconds, 3),
            "shifted_days": self.shifted_days,
            "newest_order_at": self.newest_order_at.isoformat() if self.newest_order_at else None,
        }


@dataclass(frozen=True, slots=True)
class NewItemFromOrders:
    """An item the orders sold, new to the catalog, as the store upserts it (a `NewItem`). Its values are
    checked already, as the catalog's `ItemIn` would check them: ids by `check_id`, prices >= 0 and
    finite, currency codes, titles of 1 to 1,000 characters, category paths as `categorize` writes them."""

    item_id: str
    title: str
    category: str
    price: float | None
    currency: str | None
    attributes: Mapping[str, object]
    created_at: datetime | None
    variants: Sequence[NewVariant] = ()


def read_orders(
    source: Source,
    format: Format | None = None,
    mapping: ColumnMapping | None = None,
    on_progress: Progress | None = None,
) -> tuple[Format, OrderBook]:
    """Read a whole file into an `OrderBook`. With no `format`, the header decides."""
    if format is None:
        format = "online-retail" if is_online_retail(source.header()) and mapping is None else "generic"
    # An order id must leave room in its messageId for `<source>:` and `:refund`.
    book = OrderBook(id_room=len(f"{source_prefix(format, mapping)}::refund"))
    total = source.size

    def read_progress(done: int) -> None:
        if on_progress is not None:
            on_progress("read", done, total)

    if format == "online-retail":
        fill_book(source, book, read_progress)
    else:
        read_generic(source, book, mapping or ColumnMapping(), read_progress)
    return format, book


def import_orders(
    store: Store,
    source: Source,
    *,
    format: Format | None = None,
    mapping: ColumnMapping | None = None,
    on_progress: Progress | None = None,
    now: datetime | None = None,
    chunk_orders: int = CHUNK_ORDERS,
    replay_until: datetime | None = None,
) -> ImportReport:
    """Import every order of `source` into `store`. Idempotent: a second run stores nothing.

    `replay_until`: replay the orders shifted by whole days so that they end by then (see the module)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    format, book = read_orders(source, format, mapping, on_progress)
    prefix = source_prefix(format, mapping)
    shift = replay_shift(store, book, prefix, replay_until) if replay_until is not None else timedelta(0)
    book.shift(shift)
    newest = book.newest_order()
    placed, created, updated, unchanged = _save_items(store, book, now)
    report = ImportReport(
        file=source.name,
        format=format,
        rows_read=book.rows_read,
        rows_imported=0,
        rows_already_imported=0,
        skipped=dict(book.skipped),
        bad_rows=book.bad_rows,
        orders=0,
        returns=0,
        orders_already_imported=0,
        people_created=0,
        items_created=created,
        items_updated=updated,
        items_unchanged=unchanged,
        seconds=0.0,
        shifted_days=shift // DAY,
        newest_order_at=newest.timestamp if newest is not None else None,
    )
    orders = list(book.orders.values())
    context_library = {"name": "shopkeeper-import", "version": _version()}
    for start in range(0, len(orders), chunk_orders):
        chunk = orders[start : start + chunk_orders]
        _save_orders(store, chunk, prefix, placed, context_library, now, report)
        if on_progress is not None:
            on_progress("write", min(start + chunk_orders, len(orders)), len(orders))
    report.seconds = time.perf_counter() - started
    return report


def replay_shift(store: Store, book: OrderBook, prefix: str, until: datetime) -> timedelta:
    """The whole days that move the book's newest order to the last day up to `until`; or, when that
    order is stored already, the shift it was stored with (so a replay a day later changes nothing)."""
    newest = book.newest_order()
    if newest is None:
        return timedelta(0)
    stored = store.events.timestamp_of(message_id(prefix, newest))
    if stored is not None:
        return timedelta(days=round((stored - newest.timestamp) / DAY))
    return timedelta(days=(until - newest.timestamp) // DAY)


def message_id(prefix: str, order: Order) -> str:
    return f"{prefix}:{order.order_id}:refund" if order.returned else f"{prefix}:{order.order_id}"


def source_prefix(format: Format, mapping: ColumnMapping | None) -> str:
    """What messageIds start with: `online-retail`, or the generic mapping's `source`."""
    return ONLINE_RETAIL if format == "online-retail" else (mapping or ColumnMapping()).prefix


def _save_items(
    store: Store, book: OrderBook, now: datetime
) -> tuple[dict[str, tuple[str, str]], int, int, int]:
    """Create the items the orders sold, fill in empty fields of known ones; (title, category) by id."""
    seen = book.items
    titles = {item_id: s.title(item_id) for item_id, s in seen.items()}
    categories = categorize(titles)
    existing = store.catalog.get_many(list(seen))
    placed: dict[str, tuple[str, str]] = {}
    upserts: list[NewItem] = []
    for item_id, s in seen.items():
        category = categories[item_id]
        old = existing.get(item_id)
        if old is None:
            item: NewItem = NewItemFromOrders(
                item_id=item_id,
                title=titles[item_id],
                category=category.path,
                price=s.latest_price,
                currency=s.currency,
                attributes=dict(category.attributes),
                created_at=s.first_seen,
            )
            upserts.append(item)
        else:
            filled = _filled_in(
                old, category.path, category.attributes, s.latest_price, s.currency, s.first_seen
            )
            if filled != old:
                upserts.append(filled)
            item = filled
        placed[item_id] = (item.title, item.category)
    if not upserts:
        return placed, 0, 0, len(seen)
    with write_transaction(store.engine) as conn:
        result = store.catalog.upsert_in(conn, upserts, now=now)
    return placed, result.created, result.updated, len(seen) - result.created - result.updated


def _filled_in(
    old: Item,
    category: str,
    attributes: dict[str, str],
    price: float,
    currency: str | None,
    first_seen: datetime,
) -> Item:
    """`old` with its empty fields filled from the orders, and created no later than its first sale."""
    return replace(
        old,
        category=old.category or category,
        price=old.price if old.price is not None else price,
        currency=old.currency or currency,
        attributes={**attributes, **old.attributes},
        created_at=min(old.created_at, first_seen),
    )


def _save_orders(
    store: Store,
    chunk: list[Order],
    prefix: str,
    placed: dict[str, tuple[str, str]],
    library: dict[str, str],
    now: datetime,
    report: ImportReport,
) -> None:
    """One transaction: store the chunk's orders not stored yet, resolving their people."""
    ids = [message_id(prefix, order) for order in chunk]
    stored = store.events.stored_message_ids(ids)  # outside the write lock: the rest need no payload
    fresh = [(mid, order) for mid, order in zip(ids, chunk, strict=True) if mid not in stored]
    dialect = store.engine.dialect
    messages = [_order_event(dialect, mid, order, placed, library, now) for mid, order in fresh]
    with write_transaction(store.engine) as conn:
        appended = append_messages(conn, messages, now)
    report.people_created += appended.people_created
    for order, person in [(o, None) for mid, o in zip(ids, chunk, strict=True) if mid in stored] + [
        (order, person) for (_, order), person in zip(fresh, appended.persons, strict=True)
    ]:
        if person is None:
            report.orders_already_imported += 1
            report.rows_already_imported += len(order.lines)
        elif order.returned:
            report.rows_imported += len(order.lines)
            report.returns += 1
        else:
            report.rows_imported += len(order.lines)
            report.orders += 1


def _order_event(
    dialect: Dialect,
    mid: str,
    order: Order,
    placed: dict[str, tuple[str, str]],
    library: dict[str, str],
    now: datetime,
) -> NewEvent:
    """One order as a Segment `track` message, stored as ingestion would store it."""
    products: list[dict[str, Any]] = []
    value = 0.0
    for _, item_id, quantity, price in order.lines:
        title, category = placed[item_id]
        products.append(
            {"product_id": item_id, "name": title, "price": price, "quantity": quantity, "category": category}
        )
        value += quantity * price
    properties: dict[str, Any] = {"order_id": order.order_id}
    # Segment's spec: an order's `revenue`; a refund's `total`, the value given back.
    properties["total" if order.returned else "revenue"] = round(value, 2)
    if order.currency is not None:
        properties["currency"] = order.currency
    properties["products"] = products
    context: dict[str, Any] = {"library": library}
    if order.country is not None:
        context["location"] = {"country": order.country}
    event = ORDER_REFUNDED if order.returned else ORDER_COMPLETED
    payload: dict[str, Any] = {"type": "track", "event": event}
    if order.user_id is not None:
        payload["userId"] = order.user_id
    else:
        payload["anonymousId"] = order.anonymous_id
    payload["properties"] = properties
    payload["context"] = context
    payload["messageId"] = mid
    payload["timestamp"] = order.timestamp
    payload["originalTimestamp"] = order.timestamp
    payload["receivedAt"] = now
    return new_event(dialect, payload, event=event, timestamp=order.timestamp, received_at=now)


def _version() -> str:
    try:
        return version("shopkeeper")
    except PackageNotFoundError:
        return "unknown"
