"""Catalog files (.json, .jsonl, .csv) read into validated items, with every bad line and the reason.

A bad line never stops the others, and an item is never half-read: when one row of a CSV item is bad,
every row of that item is skipped, so an import can't drop a variant (and its stock) by accident.
Problems with the whole file (an unknown format, a CSV without the needed columns, broken JSON syntax)
raise `InvalidInput`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from shopkeeper.catalog.items import ItemIn, VariantIn, describe
from shopkeeper.errors import InvalidInput
from shopkeeper.events.importers.source import first_lines, sniffed_reader

Format = Literal["json", "jsonl", "csv"]
FORMATS: dict[str, Format] = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

ITEM_COLUMNS = ("item_id", "title", "category", "price", "currency", "created_at")
VARIANT_COLUMNS = ("variant_id", "stock", "variant_price")
VARIANT_ATTRIBUTE_COLUMNS = ("size", "colour", "color")
REQUIRED_COLUMNS = ("item_id", "title")
# What PostgreSQL can store, which ItemIn doesn't check yet: its 32-bit stock column, and no NUL in text.


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line (a CSV row, a JSONL line, or where a JSON array entry starts) left out, and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """What a catalog file holds. `lines_read` counts CSV rows, JSONL lines or JSON entries (not blanks)."""

    format: Format
    items: list[ItemIn]
    lines_read: int
    skipped: list[SkippedLine]


def catalog_format(path: Path) -> Format:
    """The format a file's extension names."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"{path.name}: unknown catalog format {path.suffix or '(no extension)'!r}; "
            "use a .json, .jsonl or .csv file",
            field="file",
        )
    return found


def read_catalog(path: Path) -> CatalogFile:
    """Read and validate the catalog file at `path`, its format chosen by its extension."""
    format = catalog_format(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    return parse_catalog(data, format)


def parse_catalog(data: bytes, format: Format) -> CatalogFile:
    """Validate a catalog file's bytes."""
    if format == "csv":
        return _parse_csv(data)
    entries = _jsonl_entries(data) if format == "jsonl" else _json_entries(data)
    return _from_entries(entries, format)


# ---- JSON and JSON lines -------------------------------------------------------------------------


class _Constant:
    """NaN or Infinity in the input: Python's json accepts them, JSON doesn't, and neither do we."""

    def __init__(self, name: str) -> None:
        self.name = name


_DECODER = json.JSONDecoder(parse_constant=_Constant)
_WHITESPACE = " \t\r\n"


def _json_entries(data: bytes) -> Iterator[tuple[int, Any]]:
    """The entries of a JSON array (or of `{"items": [...]}`), each with the line it starts on."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"line {line} is not valid UTF-8; save the file as UTF-8", field="file") from None
    if not text.strip(_WHITESPACE):
        raise InvalidInput("the file is empty; a JSON catalog is a list of items", field="file")
    scanner = _Scanner(text)
    opening = scanner.peek()
    if opening == "[":
        yield from scanner.array()
    elif opening == "{":
        scanner.expect("{")
        if scanner.peek() == "}":
            raise InvalidInput('the JSON object has no "items" array', field="file")
        _, key = scanner.value()
        scanner.expect(":")
        if key != "items":
            raise InvalidInput(
                f'line {scanner.line()}: a JSON catalog is a list of items or {{"items": [...]}}; '
                f"unexpected key {key!r}",
                field="file",
            )
        yield from scanner.array()
        if scanner.next_of(",}") == ",":
            raise InvalidInput(f'line {scanner.line()}: the JSON object may hold only "items"', field="file")
    else:
        raise InvalidInput('a JSON catalog is a list of items or {"items": [...]}', field="file")
    scanner.end()


class _Scanner:
    """Walks a JSON document's outer array entry by entry, so each entry gets its line number."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._line = 1
        self._line_pos = 0

    def line(self, pos: int | None = None) -> int:
        pos = self.pos if pos is None else pos
        self._line += self.text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._line

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1
        if self.pos == len(self.text):
            raise InvalidInput("the JSON ends too early", field="file")
        return self.text[self.pos]

    def expect(self, char: str) -> None:
        self.next_of(char)

    def next_of(self, chars: str) -> str:
        found = self.peek()
        if found not in chars:
            wanted = " or ".join(repr(c) for c in chars)
            raise InvalidInput(
                f"line {self.line()}: expected {wanted} in the JSON, found {found!r}", field="file"
            )
        self.pos += 1
        return found

    def value(self) -> tuple[int, Any]:
        self.peek()
        start = self.pos
        try:
            value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}", field="file"
            ) from None
        return self.line(start), value

    def array(self) -> Iterator[tuple[int, Any]]:
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.next_of(",]") == "]":
                return

    def end(self) -> None:
        rest = self.text[self.pos :].strip(_WHITESPACE)
        if rest:
            raise InvalidInput(f"line {self.line()}: unexpected text after the JSON", field="file")


def _jsonl_entries(data: bytes) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's JSON, or a SkippedLine for a line that isn't JSON."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, SkippedLine(number, "not valid UTF-8")
            continue
        try:
            yield number, _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            yield number, SkippedLine(number, f"not valid JSON: {exc.msg} (column {exc.colno})")


def _from_entries(entries: Iterator[tuple[int, Any]], format: Format) -> CatalogFile:
    items: list[ItemIn] = []
    skipped: list[SkippedLine] = []
    first_line: dict[str, int] = {}
    read = 0
    for line, raw in entries:
        read += 1
        if isinstance(raw, SkippedLine):
            skipped.append(raw)
            continue
        constant = _find_constant(raw, "")
        if constant is not None:
            skipped.append(SkippedLine(line, constant))
            continue
        if not isinstance(raw, dict):
            skipped.append(SkippedLine(line, "an item must be a JSON object"))
            continue
        try:
            item = ItemIn.model_validate(raw)
        except ValidationError as exc:
            skipped.append(SkippedLine(line, _problem(exc)))
            continue
        if item.item_id in first_line:
            skipped.append(
                SkippedLine(
                    line, f"item_id {item.item_id!r} appears again (first on line {first_line[item.item_id]})"
                )
            )
            continue
        first_line[item.item_id] = line
        items.append(item)
    return CatalogFile(format, items, read, skipped)


def _find_constant(value: Any, path: str) -> str | None:
    """Where a NaN or Infinity sits in a parsed entry, as a reason to skip it."""
    if isinstance(value, _Constant):
        return f"{path or 'the item'}: {value.name} is not a number JSON allows"
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _find_constant(inner, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for i, inner in enumerate(value):
            found = _find_constant(inner, f"{path}[{i}]")
            if found:
                return found
    return None


def _problem(exc: ValidationError, *, csv_variant: bool = False, csv_item: bool = False) -> str:
    """The first validation error as `field: what is wrong`, naming CSV columns for CSV rows."""
    first = exc.errors(include_url=False)[0]
    loc = first["loc"]
    detail = describe(first)
    if (csv_variant or csv_item) and loc:
        return f"{_column(loc, variant=csv_variant)}: {detail}"
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{path}: {detail}" if path else detail


def _column(loc: tuple[int | str, ...], *, variant: bool) -> str:
    if loc[0] == "attributes" and len(loc) > 1:
        return str(loc[1])
    if variant and loc[0] == "price":
        return "variant_price"
    return str(loc[0])


# ---- CSV -----------------------------------------------------------------------------------------


@dataclass
class _CsvItem:
    """The rows of one item so far: its fields and attributes (each with its line) and its variants."""

    lines: list[int]
    fields: dict[str, tuple[str, int]] = field(default_factory=dict)
    attributes: dict[str, tuple[str, int]] = field(default_factory=dict)
    variants: dict[str, tuple[VariantIn, int]] = field(default_factory=dict)
    bad: list[SkippedLine] = field(default_factory=list)


def _parse_csv(data: bytes) -> CatalogFile:
    try:
        text = data.decode("utf-8-sig")
        clean = True
    except UnicodeDecodeError:
        # Keep going: the rows with bad bytes are skipped, the others read.
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
        clean = False
    reader = sniffed_reader(io.StringIO(text, newline=""), first_lines(text))
    header = _header(reader, clean)
    index = {name.lower(): i for i, name in enumerate(header)}
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        raise InvalidInput(
            f"the CSV needs the columns {', '.join(REQUIRED_COLUMNS)}; missing: {', '.join(missing)} "
            f"(found: {', '.join(header)})",
            field="file",
        )
    known = set(ITEM_COLUMNS) | set(VARIANT_COLUMNS) | set(VARIANT_ATTRIBUTE_COLUMNS)
    attribute_columns = [(i, name) for i, name in enumerate(header) if name.lower() not in known]
    id_column = index["item_id"]

    grouped: dict[str, _CsvItem] = {}
    skipped: list[SkippedLine] = []
    read = 0
    previous_end = reader.line_num
    for line, cells in _rows(reader):
        start, previous_end = previous_end + 1, line
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        read += 1
        item_id = cells[id_column].strip() if id_column < len(cells) else ""
        if not item_id:
            skipped.append(SkippedLine(start, "item_id is empty"))
            continue
        group = grouped.setdefault(item_id, _CsvItem(lines=[]))
        reason = _csv_problem(cells, header, clean) or _add_row(
            group, start, {name: cells[i].strip() for name, i in index.items()}, cells, attribute_columns
        )
        if reason:
            group.bad.append(SkippedLine(start, reason))
        else:
            group.lines.append(start)

    items: list[ItemIn] = []
    for item_id, group in grouped.items():
        if not group.bad:
            item, bad = _csv_item(item_id, group)
            if item is not None:
                items.append(item)
                continue
            group.bad.append(bad)
            group.lines.remove(bad.line)
        first_bad = min(b.line for b in group.bad)
        skipped += group.bad
        skipped += [
            SkippedLine(line, f"item {item_id!r} is skipped because line {first_bad} is bad")
            for line in group.lines
        ]
    skipped.sort(key=lambda s: s.line)
    return CatalogFile("csv", items, read, skipped)


def _header(reader: Any, clean: bool) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise InvalidInput("the CSV file is empty; it needs a header row", field="file") from None
    except csv.Error as exc:
        raise InvalidInput(f"line 1: not valid CSV: {exc}", field="file") from None
    if not clean and _has_bad_bytes(header):
        raise InvalidInput("line 1 (the header) is not valid UTF-8", field="file")
    for i, name in enumerate(header, start=1):
        if not name:
            raise InvalidInput(f"column {i} of the header has no name", field="file")
    lowered = [name.lower() for name in header]
    twice = sorted({name for name in lowered if lowered.count(name) > 1})
    if twice:
        raise InvalidInput(f"the column {twice[0]!r} appears twice in the header", field="file")
    return header


def _rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record with the number of the line it ends on."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"line {reader.line_num}: not valid CSV: {exc}", field="file") from None
        yield reader.line_num, cells


def _has_bad_bytes(cells: list[str]) -> bool:
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _csv_problem(cells: list[str], header: list[str], clean: bool) -> str | None:
    if len(cells) != len(header):
        return f"the row has {len(cells)} cells, the header {len(header)}"
    if not clean and _has_bad_bytes(cells):
        return "not valid UTF-8"
    if any("\x00" in cell for cell in cells):
        return "the row contains a NUL character"
    return None


def _add_row(
    group: _CsvItem,
    line: int,
    values: dict[str, str],
    cells: list[str],
    attribute_columns: list[tuple[int, str]],
) -> str | None:
    """Fold one good row into its item; or the reason the row is bad."""
    fields = {c: values[c] for c in ITEM_COLUMNS if values.get(c) and c != "item_id"}
    attributes = {name: cells[i].strip() for i, name in attribute_columns if cells[i].strip()}
    variant_id = values.get("variant_id", "")
    looks = {c: values[c] for c in VARIANT_ATTRIBUTE_COLUMNS if values.get(c)}
    variant: VariantIn | None = None
    if variant_id:
        raw_variant = {
            "variant_id": variant_id,
            "attributes": looks,
            "price": values.get("variant_price") or None,
            "stock": values.get("stock") or None,
        }
        try:
            variant = VariantIn.model_validate(raw_variant)
        except ValidationError as exc:
            return _problem(exc, csv_variant=True)
        if variant_id in group.variants:
            return f"variant_id {variant_id!r} appears again (first on line {group.variants[variant_id][1]})"
    else:
        orphans = [c for c in ("stock", "variant_price") if values.get(c)]
        if orphans:
            verb = "needs" if len(orphans) == 1 else "need"
            return f"{' and '.join(orphans)} {verb} a variant_id: stock and variant prices are per variant"
        attributes.update(looks)
    for kind, new, old in (("", fields, group.fields), ("attribute ", attributes, group.attributes)):
        for name, value in new.items():
            if name in old and old[name][0] != value:
                return f"{kind}{name} is {value!r} here but {old[name][0]!r} on line {old[name][1]}"
    for name, value in fields.items():
        group.fields.setdefault(name, (value, line))
    for name, value in attributes.items():
        group.attributes.setdefault(name, (value, line))
    if variant is not None:
        group.variants[variant.variant_id] = (variant, line)
    return None


def _csv_item(item_id: str, group: _CsvItem) -> tuple[ItemIn | None, SkippedLine]:
    """The item the rows describe; or, when it is invalid, the line to blame and why."""
    raw: dict[str, Any] = {name: value for name, (value, _) in group.fields.items()}
    raw["item_id"] = item_id
    raw["attributes"] = {name: value for name, (value, _) in group.attributes.items()}
    raw["variants"] = [variant for variant, _ in group.variants.values()]
    try:
        return ItemIn.model_validate(raw), SkippedLine(0, "")
    except ValidationError as exc:
        loc = exc.errors(include_url=False)[0]["loc"]
        column = _column(loc, variant=False) if loc else ""
        source = group.attributes if loc and loc[0] == "attributes" else group.fields
        line = source[column][1] if column in source else group.lines[0]
        return None, SkippedLine(line, _problem(exc, csv_item=True))
