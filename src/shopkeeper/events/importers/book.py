"""Order lines grouped into orders and returns, with every skipped row and why. Pure: no database.

A format reader (`online_retail`, `generic`) calls `OrderBook.add` or `OrderBook.skip` exactly once per
data row, so `rows_read` is `lines + sum(skipped)`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_ID_LENGTH = 255

# Rows left out on purpose: they are not sales of products.
NOT_A_PRODUCT = "not_a_product"
STOCK_ADJUSTMENT = "stock_adjustment"
ZERO_PRICE = "zero_price"
# Rows that are wrong: counted, and listed with their line numbers.
BAD_ROW = "bad_row"
MISSING_ORDER_ID = "missing_order_id"
MISSING_ITEM_ID = "missing_item_id"
BAD_QUANTITY = "bad_quantity"
BAD_PRICE = "bad_price"
BAD_TIMESTAMP = "bad_timestamp"
BAD_CURRENCY = "bad_currency"
BAD_ID = "bad_id"
CONFLICTING_ORDER = "conflicting_order"

REASONS: dict[str, str] = {
    NOT_A_PRODUCT: "not a product (postage, fees, discounts, manual entries)",
    STOCK_ADJUSTMENT: "negative quantity outside a cancellation: a stock adjustment",
    ZERO_PRICE: "price 0: a stock-keeping entry, not a sale",
    BAD_ROW: "unreadable row or wrong number of columns",
    MISSING_ORDER_ID: "no order id",
    MISSING_ITEM_ID: "no item id",
    BAD_QUANTITY: "quantity not a non-zero whole number",
    BAD_PRICE: "price not a number >= 0",
    BAD_TIMESTAMP: "unreadable date",
    BAD_CURRENCY: "currency not a 3-letter code",
    BAD_ID: "an id too long or with a NUL character",
    CONFLICTING_ORDER: "another customer or currency than the order's first line",
}
INTENDED_SKIPS = frozenset({NOT_A_PRODUCT, STOCK_ADJUSTMENT, ZERO_PRICE})


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be imported: its line in the file (the header is line 1), and why."""

    line: int
    reason: str
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason, "detail": self.detail}


@dataclass(slots=True)
class Order:
    """One order, or the returned part of one. `lines` are (line number, item id, quantity, unit price);
    quantities are positive, also for returns. A guest's order has no `user_id`, only `anonymous_id`."""

    order_id: str
    returned: bool
    user_id: str | None
    anonymous_id: str | None
    currency: str | None
    country: str | None
    timestamp: datetime  # the earliest line's
    lines: list[tuple[int, str, int, float]] = field(default_factory=list)


@dataclass(slots=True)
class ItemSeen:
    """What the order lines say about one item: its titles, its first sale and its latest price."""

    first_seen: datetime
    latest_at: datetime
    latest_price: float
    currency: str | None
    titles: dict[str, int]  # title -> lines, in the order first seen

    def title(self, item_id: str) -> str:
        """The most common title; the first seen among equals; the item id when no line had one."""
        best = max(self.titles.items(), key=lambda pair: pair[1], default=None)
        title = best[0].replace("\x00", "")[:1000] if best is not None else ""
        return title or item_id


class OrderBook:
    """Collects order lines into orders (and returns), items, skips and bad rows, in file order.

    `id_room`: characters a messageId adds to an order id (`<source>:` and `:refund`), so that every
    order id fits the 255 characters of a messageId.
    """

    def __init__(self, *, id_room: int = 0) -> None:
        self.skipped: Counter[str] = Counter()
        self.bad_rows: list[BadRow] = []
        self.orders: dict[tuple[str, bool], Order] = {}
        self.items: dict[str, ItemSeen] = {}
        self._id_room = id_room
        self._last: Order | None = None  # lines of one order mostly come together

    @property
    def lines(self) -> int:
        """Rows added to orders."""
        return sum(len(order.lines) for order in self.orders.values())

    @property
    def rows_read(self) -> int:
        return self.lines + sum(self.skipped.values())

    def newest_order(self) -> Order | None:
        """The order placed last (the greatest order id among equals), or None for an empty book."""
        return max(self.orders.values(), key=lambda order: (order.timestamp, order.order_id), default=None)

    def shift(self, by: timedelta) -> None:
        """Move every order's and item's dates by `by`: old orders replayed as recent ones."""
        if not by:
            return
        for order in self.orders.values():
            order.timestamp += by
        for seen in self.items.values():
            seen.first_seen += by
            seen.latest_at += by

    def skip(self, line: int, reason: str, detail: str = "") -> None:
        """Leave a row out. Reasons outside INTENDED_SKIPS are bad rows and keep their line number."""
        self.skipped[reason] += 1
        if reason not in INTENDED_SKIPS:
            self.bad_rows.append(BadRow(line, reason, detail or REASONS.get(reason, reason)))

    def add(
        self,
        line: int,
        order_id: str,
        returned: bool,
        item_id: str,
        title: str,
        quantity: int,
        price: float,
        timestamp: datetime,
        user_id: str | None,
        currency: str | None,
        country: str | None,
    ) -> None:
        """Add one line (`quantity` > 0) to its order, or to the order's returns when `returned`.

        Ids are checked when first seen: an order's and its customer's with its first line, an item's
        with its first sale.
        """
        order = self._last
        new_order = False
        if order is None or order.order_id != order_id or order.returned is not returned:
            order = self.orders.get((order_id, returned))
            if order is None:
                problem = check_id(order_id, room=self._id_room) or (user_id and check_id(user_id))
                if problem:
                    self.skip(line, BAD_ID, problem)
                    return
                anonymous_id = None if user_id else f"guest:{order_id}"
                order = Order(order_id, returned, user_id, anonymous_id, currency, country, timestamp)
                new_order = True
        if not new_order:
            if order.user_id != user_id or order.currency != currency:
                what = "customer" if order.user_id != user_id else "currency"
                self.skip(
                    line, CONFLICTING_ORDER, f"order {order_id!r} has another {what} on an earlier line"
                )
                return
            if timestamp < order.timestamp:
                order.timestamp = timestamp
        seen = self.items.get(item_id)
        if seen is None:
            problem = check_id(item_id)
            if problem:
                self.skip(line, BAD_ID, problem)
                return
            seen = self.items[item_id] = ItemSeen(timestamp, timestamp, price, currency, {})
        else:
            if timestamp < seen.first_seen:
                seen.first_seen = timestamp
            if timestamp >= seen.latest_at:
                seen.latest_at = timestamp
                seen.latest_price = price
                seen.currency = currency
        if new_order:
            self.orders[(order_id, returned)] = order
        self._last = order
        order.lines.append((line, item_id, quantity, price))
        if title:
            titles = seen.titles
            titles[title] = titles.get(title, 0) + 1


def check_id(value: str, *, room: int = 0) -> str | None:
    """Why an id can't be stored (too long, or a NUL), or None when it can. `room`: chars we add to it."""
    if len(value) + room > MAX_ID_LENGTH:
        return f"{value[:40]!r}... is longer than {MAX_ID_LENGTH - room} characters"
    if "\x00" in value:
        return "contains a NUL character"
    return None
