"""Order lines for offline evaluation: read an Online Retail CSV, clean it, one event per item invoice.

The cleaning is the evaluation protocol's (issue 4): keep rows with a CustomerID, Quantity > 0, no
`C` (cancellation) invoice, UnitPrice > 0, and a StockCode that starts with a digit. The interaction
weight is the number of distinct invoices, so a (customer, item, invoice) triple is one event.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shopkeeper.errors import InvalidInput
from shopkeeper.recommend.base import FloatArray, IntArray

COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")


@dataclass(frozen=True)
class OrderEvents:
    """One row per distinct (customer, item, invoice): codes into `customers` / `items`, epoch `times`."""

    customer: IntArray
    item: IntArray
    times: FloatArray
    price: FloatArray
    customers: list[str]
    items: list[str]
    rows_read: int
    rows_kept: int


def keep_row(customer: str, quantity: str, invoice: str, price: str, stock_code: str) -> bool:
    """The protocol's cleaning rule for one order line (all fields as read from the CSV)."""
    try:
        return (
            bool(customer.strip())
            and float(quantity) > 0
            and not invoice.strip().upper().startswith("C")
            and float(price) > 0
            and stock_code.strip()[:1].isdigit()
        )
    except ValueError:
        return False


def customer_id(raw: str) -> str:
    """`17850.0` (the Spark export's float form) and `17850` are the same customer."""
    raw = raw.strip()
    return raw[:-2] if raw.endswith(".0") else raw


def parse_time(raw: str) -> float:
    """`2010-12-01 08:26:00` (UTC, as the shop's clock) in seconds since the epoch."""
    return datetime.fromisoformat(raw.strip()).replace(tzinfo=UTC).timestamp()


def read_online_retail(path: Path) -> OrderEvents:
    """Read an Online Retail CSV (plain or gzip), cleaned and deduplicated to one event per item invoice."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="orders") from exc
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InvalidInput(f"{path.name} is not an Online Retail CSV: no {', '.join(missing)} column")
    col = {name: header.index(name) for name in COLUMNS}
    width = max(col.values()) + 1
    seen: set[tuple[str, str, str]] = set()
    customers: dict[str, int] = {}
    items: dict[str, int] = {}
    times_cache: dict[str, float] = {}
    rows: list[tuple[int, int, float, float]] = []
    read = kept = 0
    for row in reader:
        if not row:
            continue
        read += 1
        if len(row) < width:
            continue
        invoice, code = row[col["InvoiceNo"]].strip(), row[col["StockCode"]].strip()
        customer, price = row[col["CustomerID"]], row[col["UnitPrice"]]
        if not keep_row(customer, row[col["Quantity"]], invoice, price, code):
            continue
        who = customer_id(customer)
        stamp = row[col["InvoiceDate"]]
        if stamp not in times_cache:
            try:
                times_cache[stamp] = parse_time(stamp)
            except ValueError:
                continue
        kept += 1
        key = (who, code, invoice)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            (
                customers.setdefault(who, len(customers)),
                items.setdefault(code, len(items)),
                times_cache[stamp],
                float(price),
            )
        )
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return OrderEvents(
        customer=table[:, 0].astype(np.int64),
        item=table[:, 1].astype(np.int64),
        times=table[:, 2].copy(),
        price=table[:, 3].copy(),
        customers=list(customers),
        items=list(items),
        rows_read=read,
        rows_kept=kept,
    )
