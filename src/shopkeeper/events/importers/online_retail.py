"""The UCI Online Retail file, as it is: its cleaning rules, for the import and the evaluation alike.

The import reads every row into an `OrderBook` (`fill_book`); the offline evaluation reads the purchases
of known customers as arrays (`read_online_retail`, the protocol of issue 4). The rules:

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
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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
from shopkeeper.events.importers.source import Source, open_file

if TYPE_CHECKING:
    from shopkeeper.recommend.orders import OrderEvents

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


class Values(NamedTuple):
    """A line's quantity (negative: returned, in a cancellation) and unit price."""

    quantity: int
    price: float


def is_online_retail(header: list[str]) -> bool:
    return header == COLUMNS


def customer_id(raw: str) -> str:
    """`17850.0` (the Spark export's float form) and `17850` are the same customer."""
    return raw.strip().removesuffix(".0")


def line_values(invoice: str, code: str, quantity_text: str, price_text: str) -> tuple[str, str] | Values:
    """The first rule: a line's quantity and price, or why it is skipped (reason, detail)."""
    if not invoice:
        return MISSING_ORDER_ID, ""
    if not code:
        return MISSING_ITEM_ID, ""
    if not code[0].isdigit():
        return NOT_A_PRODUCT, code
    return number_values(quantity_text, price_text)


def number_values(quantity_text: str, price_text: str) -> tuple[str, str] | Values:
    """A product line's quantity and price as numbers, or why they are not (reason, detail)."""
    try:
        quantity = int(quantity_text)
    except ValueError:
        return BAD_QUANTITY, f"quantity {quantity_text!r} is not a whole number"
    try:
        price = float(price_text)
    except ValueError:
        price = -1.0
    if not 0.0 <= price < math.inf:
        return BAD_PRICE, f"price {price_text!r} is not a number >= 0"
    return Values(quantity, price)


def line_meaning(invoice: str, quantity: int, price: float) -> tuple[str, str] | None:
    """The second rule, once the date is read: None for a sale or (in a cancellation) a return, else
    why the line is skipped (reason, detail)."""
    returned = invoice[0] == "C"
    if returned and quantity >= 0:
        return BAD_QUANTITY, f"quantity {quantity} in cancellation {invoice}"
    if quantity < 0 and not returned:
        return STOCK_ADJUSTMENT, ""
    if quantity == 0:
        return BAD_QUANTITY, "quantity 0"
    if price == 0.0:
        return ZERO_PRICE, ""
    return None


def keep_row(customer: str, quantity: str, invoice: str, price: str, stock_code: str) -> bool:
    """The evaluation protocol's cleaning (issue 4): a sale the import stores, by a known customer."""
    values = line_values(invoice.strip(), stock_code.strip(), quantity, price)
    return (
        isinstance(values, Values)
        and values.quantity > 0
        and line_meaning(invoice.strip(), *values) is None
        and bool(customer.strip())
    )


def fill_book(source: Source, book: OrderBook, on_progress: Callable[[int], None] | None = None) -> None:
    """Read every row of `source` into `book`. `on_progress(bytes read)` is called now and then.

    The rules are `line_values` and `line_meaning`; what a line's texts parse to is kept, since the file
    repeats them (a few thousand distinct quantities, prices, dates and customers in 540,000 rows)."""
    _check_header(source)
    rows = source.rows(lambda line, error: book.skip(line, BAD_ROW, error))
    skip, add = book.skip, book.add
    dates: dict[str, datetime] = {}
    numbers: dict[tuple[str, str], tuple[str, str] | Values] = {}
    customers: dict[str, str | None] = {}
    for line, row in rows:
        if len(row) != 8:
            skip(line, BAD_ROW, f"expected 8 columns, found {len(row)}")
            continue
        invoice, code, description, quantity_text, date_text, price_text, customer, country = row
        if not line & 0x3FFF and on_progress is not None:
            on_progress(source.position())
        if not (invoice and code and code[0].isdigit()):
            skip(line, *line_values(invoice, code, quantity_text, price_text))  # a reason, never Values
            continue
        values = numbers.get((quantity_text, price_text))
        if values is None:
            values = numbers[(quantity_text, price_text)] = number_values(quantity_text, price_text)
        if type(values) is not Values:
            skip(line, *values)
            continue
        timestamp = dates.get(date_text)
        if timestamp is None:
            try:
                timestamp = dates[date_text] = _read_date(date_text)
            except ValueError:
                skip(line, BAD_TIMESTAMP, f"InvoiceDate {date_text!r} is not a date")
                continue
        quantity, price = values
        problem = line_meaning(invoice, quantity, price)
        if problem is not None:
            skip(line, *problem)
            continue
        user_id = customers.get(customer, "")
        if user_id == "":
            user_id = customers[customer] = customer_id(customer) or None
        returned = quantity < 0
        add(
            line,
            invoice,
            returned,
            code,
            description.strip(),
            -quantity if returned else quantity,
            price,
            timestamp,
            user_id,
            CURRENCY,
            country or None,
        )
    if on_progress is not None:
        on_progress(source.position())


def read_online_retail(path: Path) -> OrderEvents:
    """The evaluation's order lines: the rows `keep_row` keeps, one event per (customer, item, invoice)
    (the interaction weight is the number of distinct invoices), with the first such row's time and price.
    """
    # Only the evaluation reads arrays: importing the recommenders here would load them at every CLI start.
    from shopkeeper.recommend.orders import DistinctOrderLines  # noqa: PLC0415

    with open_file(path) as source:
        _check_header(source)
        lines = DistinctOrderLines()
        times: dict[str, float] = {}
        read = kept = 0
        for _, row in source.rows(lambda line, error: None):
            read += 1
            if len(row) != 8:
                continue
            invoice, code, _, quantity, date_text, price, customer, _ = row
            if not keep_row(customer, quantity, invoice, price, code):
                continue
            if date_text not in times:
                try:
                    times[date_text] = _read_date(date_text).timestamp()
                except ValueError:
                    continue
            kept += 1
            lines.add(customer_id(customer), code.strip(), invoice.strip(), times[date_text], float(price))
    return lines.events(rows_read=read, rows_kept=kept)


def _check_header(source: Source) -> None:
    if not is_online_retail(source.header()):
        raise InvalidInput(
            f"{source.name}: not the Online Retail format (its columns are {', '.join(COLUMNS)}); "
            "use --format generic with a column mapping",
            field="file",
        )


def _read_date(text: str) -> datetime:
    """`2010-12-01 08:26:00`, taken as UTC (the shop's clock)."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
