"""Any order-lines CSV, read through a column mapping given by flags or a small TOML file.

One row is one order line. A positive quantity is a purchase, a negative one a return of that many. The
mapping names the file's columns; a field whose column is not named is looked for under its own name
(`order_id`, `quantity`, ...). `order_id`, `item_id`, `quantity`, `price` and `timestamp` are required;
`customer_id` (none: every order is a guest's), `title`, `currency` and `country` are optional.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopkeeper.errors import InvalidInput
from shopkeeper.events.importers.book import (
    BAD_CURRENCY,
    BAD_PRICE,
    BAD_QUANTITY,
    BAD_ROW,
    BAD_TIMESTAMP,
    MISSING_ITEM_ID,
    MISSING_ORDER_ID,
    OrderBook,
)
from shopkeeper.events.importers.source import Source

REQUIRED = ("order_id", "item_id", "quantity", "price", "timestamp")
OPTIONAL = ("customer_id", "title", "currency", "country")
DEFAULT_SOURCE = "generic"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which column holds which field, and the settings of a generic import. None: not given."""

    order_id: str | None = None
    customer_id: str | None = None
    item_id: str | None = None
    title: str | None = None
    quantity: str | None = None
    price: str | None = None
    timestamp: str | None = None
    currency: str | None = None
    country: str | None = None
    default_currency: str | None = None  # when there is no currency column, or it is empty
    timestamp_format: str | None = None  # strptime format; ISO 8601 when not given
    source: str | None = None  # the messageId prefix, `<source>:<order id>`; "generic" when not given

    @property
    def prefix(self) -> str:
        return self.source or DEFAULT_SOURCE

    def overridden_by(self, other: ColumnMapping) -> ColumnMapping:
        """This mapping with every setting `other` gives (flags win over the TOML file)."""
        given = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None}
        return replace(self, **given)

    def check(self) -> ColumnMapping:
        if self.default_currency is not None and not _CURRENCY.match(self.default_currency):
            raise InvalidInput(
                f"default currency {self.default_currency!r} is not a 3-letter code such as GBP",
                field="default_currency",
            )
        if not _SOURCE.match(self.prefix):
            raise InvalidInput(
                f"source {self.source!r} must be 1 to 40 letters, digits, '_', '.' or '-'", field="source"
            )
        return self


def load_mapping(path: Path) -> ColumnMapping:
    """A mapping from a TOML file of `field = "column"` lines, plus the settings of `ColumnMapping`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="mapping") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a valid TOML file ({exc})", field="mapping") from None
    return mapping_from(raw, where=str(path))


def mapping_from(raw: Mapping[str, Any], *, where: str = "mapping") -> ColumnMapping:
    known = {f.name for f in fields(ColumnMapping)}
    for key, value in raw.items():
        if key not in known:
            raise InvalidInput(
                f"{where}: unknown key {key!r}; the keys are {', '.join(sorted(known))}", field=key
            )
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{where}: {key} must be a non-empty string", field=key)
    return ColumnMapping(**{k: v.strip() for k, v in raw.items()}).check()


@dataclass(frozen=True, slots=True)
class _Columns:
    """The mapping resolved against a header: each field's column index, or None."""

    order_id: int
    item_id: int
    quantity: int
    price: int
    timestamp: int
    customer_id: int | None
    title: int | None
    currency: int | None
    country: int | None


def _resolve(mapping: ColumnMapping, header: list[str], name: str) -> _Columns:
    position = {column: i for i, column in enumerate(header)}
    found: dict[str, int | None] = {}
    missing: list[str] = []
    for field_name in REQUIRED + OPTIONAL:
        named: str | None = getattr(mapping, field_name)
        column = named or field_name
        if column in position:
            found[field_name] = position[column]
        elif named is not None or field_name in REQUIRED:
            missing.append(f"{field_name} (column {column!r}; --{field_name.replace('_', '-')} COL)")
        else:
            found[field_name] = None
    if missing:
        raise InvalidInput(
            f"{name}: no column for {'; '.join(missing)}. The file's columns are: {', '.join(header)}",
            field="mapping",
        )
    return _Columns(**found)  # type: ignore[arg-type]


def read_generic(
    source: Source,
    book: OrderBook,
    mapping: ColumnMapping,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Read every row of `source` into `book`, through `mapping`."""
    columns = _resolve(mapping, source.header(), source.name)
    rows = source.rows(lambda line, error: book.skip(line, BAD_ROW, error))
    width = max(i for i in (getattr(columns, f.name) for f in fields(_Columns)) if i is not None) + 1
    parse_time = _time_parser(mapping.timestamp_format)
    times: dict[str, datetime | None] = {}
    for line, row in rows:
        if not line & 0x3FFF and on_progress is not None:
            on_progress(source.position())
        if len(row) < width:
            book.skip(line, BAD_ROW, f"expected at least {width} columns, found {len(row)}")
            continue
        order_id = row[columns.order_id].strip()
        item_id = row[columns.item_id].strip()
        if not order_id:
            book.skip(line, MISSING_ORDER_ID)
            continue
        if not item_id:
            book.skip(line, MISSING_ITEM_ID)
            continue
        customer = row[columns.customer_id].strip() if columns.customer_id is not None else ""
        quantity_text = row[columns.quantity].strip()
        quantity = _whole_number(quantity_text)
        if not quantity:
            book.skip(line, BAD_QUANTITY, f"quantity {quantity_text!r} is not a non-zero whole number")
            continue
        price_text = row[columns.price].strip()
        try:
            price = float(price_text)
        except ValueError:
            price = math.nan
        if not 0 <= price < math.inf:
            book.skip(line, BAD_PRICE, f"price {price_text!r} is not a number >= 0")
            continue
        time_text = row[columns.timestamp].strip()
        if time_text not in times:
            times[time_text] = parse_time(time_text)
        timestamp = times[time_text]
        if timestamp is None:
            book.skip(line, BAD_TIMESTAMP, f"timestamp {time_text!r} is not a date")
            continue
        currency = mapping.default_currency
        if columns.currency is not None and row[columns.currency].strip():
            currency = row[columns.currency].strip().upper()
            if not _CURRENCY.match(currency):
                book.skip(line, BAD_CURRENCY, f"currency {currency!r} is not a 3-letter code")
                continue
        title = row[columns.title].strip() if columns.title is not None else ""
        country = row[columns.country].strip() if columns.country is not None else ""
        book.add(
            line,
            order_id,
            quantity < 0,
            item_id,
            title,
            abs(quantity),
            price,
            timestamp,
            customer or None,
            currency,
            country.replace("\x00", "")[:255] or None,
        )
    if on_progress is not None:
        on_progress(source.position())


def _whole_number(text: str) -> int | None:
    """`3`, `-2`, `3.0` -> the number; anything else (`1.5`, `x`, `inf`) -> None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def _time_parser(form: str | None) -> Callable[[str], datetime | None]:
    """Parse a timestamp: ISO 8601, or `form` (strptime). No zone means UTC; others are converted."""

    def parse(text: str) -> datetime | None:
        try:
            value = datetime.strptime(text, form) if form else datetime.fromisoformat(text)
        except ValueError:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    return parse
