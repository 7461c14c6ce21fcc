"""The UCI Online Retail file, as it is: its rows read into an `OrderBook`.

Columns: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country.
- An invoice is an order. An invoice whose number starts with "C" is a cancellation: its lines (negative
  quantities) are a return of those products.
- A negative quantity in any other invoice is a stock adjustment ("damaged", "found"), not a sale: skipped.
- A StockCode that does not start with a digit (POST, DOT, M, C2, D, S, BANK CHARGES, AMAZONFEE, CRUK, B,
  gift_0001_20, DCGS...) is postage, a fee, a discount, a manual entry or a voucher, not a product:
  skipped, so it is neither a product nor part of the revenue.
- A line priced 0 is a stock-keeping entry (mostly with no description or customer), not a sale: skipped.
- CustomerID is written as a float (`17850.0`); the userId is `17850`. Rows without one are guest orders.
- InvoiceDate is taken as UTC. Prices are GBP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from shopkeeper.errors import InvalidInput
from shopkeeper.events.importers.book import (
    BAD_PRICE,
    BAD_QUANTITY,
    BAD_ROW,
    BAD_TIMESTAMP,
    MISSING_ITEM_ID,
    MISSING_ORDER_ID,
    NOT_A_PRODUCT,
    STOCK_ADJUSTMENT,
    ZERO_PRICE,
    OrderBook,
)
from shopkeeper.events.importers.source import Source

COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
CURRENCY = "GBP"
SOURCE = "online-retail"


def is_online_retail(header: list[str]) -> bool:
    return header == COLUMNS


def read_online_retail(
    source: Source, book: OrderBook, on_progress: Callable[[int], None] | None = None
) -> None:
    """Read every row of `source` into `book`. `on_progress(bytes read)` is called now and then."""
    if not is_online_retail(source.header()):
        raise InvalidInput(
            f"{source.name}: not the Online Retail format (its columns are {', '.join(COLUMNS)}); "
            "use --format generic with a column mapping",
            field="file",
        )
    rows = source.rows(lambda line, error: book.skip(line, BAD_ROW, error))
    skip, add = book.skip, book.add
    dates: dict[str, datetime] = {}
    inf = math.inf
    for line, row in rows:
        if len(row) != 8:
            skip(line, BAD_ROW, f"expected 8 columns, found {len(row)}")
            continue
        invoice, code, description, quantity_text, date_text, price_text, customer, country = row
        if not line & 0x3FFF and on_progress is not None:
            on_progress(source.position())
        if not invoice:
            skip(line, MISSING_ORDER_ID)
            continue
        if not code:
            skip(line, MISSING_ITEM_ID)
            continue
        if not code[0].isdigit():
            skip(line, NOT_A_PRODUCT, code)
            continue
        try:
            quantity = int(quantity_text)
        except ValueError:
            skip(line, BAD_QUANTITY, f"quantity {quantity_text!r} is not a whole number")
            continue
        try:
            price = float(price_text)
        except ValueError:
            price = -1.0
        if not 0.0 <= price < inf:
            skip(line, BAD_PRICE, f"price {price_text!r} is not a number >= 0")
            continue
        timestamp = dates.get(date_text)
        if timestamp is None:
            try:
                timestamp = dates[date_text] = datetime.fromisoformat(date_text).replace(tzinfo=UTC)
            except ValueError:
                skip(line, BAD_TIMESTAMP, f"InvoiceDate {date_text!r} is not a date")
                continue
        returned = invoice[0] == "C"
        if returned and quantity >= 0:
            skip(line, BAD_QUANTITY, f"quantity {quantity} in cancellation {invoice}")
        elif quantity < 0 and not returned:
            skip(line, STOCK_ADJUSTMENT)
        elif quantity == 0:
            skip(line, BAD_QUANTITY, "quantity 0")
        elif price == 0.0:
            skip(line, ZERO_PRICE)
        else:
            add(
                line,
                invoice,
                returned,
                code,
                description.strip(),
                -quantity if returned else quantity,
                price,
                timestamp,
                customer.removesuffix(".0") or None,
                CURRENCY,
                country or None,
            )
    if on_progress is not None:
        on_progress(source.position())
