"""The CSV reader: a file (plain or gzip, told by its first bytes) or the bundled sample, its delimiter
sniffed from its first lines, its rows with their line numbers."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO, Protocol

from shopkeeper.errors import InvalidInput

SAMPLE_NAME = "online_retail_sample.csv.gz"
DELIMITERS = ",;\t|"
SNIFF_CHARACTERS = 8192
_GZIP_MAGIC = b"\x1f\x8b"


class _Reader(Protocol):
    """What we use of a `csv.reader`."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...
    def __next__(self) -> list[str]: ...


@dataclass
class Source:
    """An open CSV source. `position()` is how many of `size` raw bytes have been read, for progress."""

    name: str
    raw: BinaryIO
    size: int | None
    _text: io.TextIOWrapper | None = None
    _reader: _Reader | None = None
    _header: list[str] | None = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def position(self) -> int:
        return self.raw.tell()

    def header(self) -> list[str]:
        """The header row, its names stripped. Read once; `rows` goes on after it."""
        if self._header is None:
            raw: BinaryIO = self.raw
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            else:
                raw.seek(0)
            self._text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                # The delimiter is told from the first lines (whole ones), which are then read again.
                sample = self._text.read(SNIFF_CHARACTERS)
                sample += self._text.readline()
                lines = itertools.chain(io.StringIO(sample, newline=""), self._text)
                self._reader = sniffed_reader(lines, sample)
                header = next(self._reader, None)
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"{self.name}: not UTF-8 text ({exc.reason}); save the file as UTF-8", field="file"
                ) from None
            except (csv.Error, gzip.BadGzipFile, EOFError) as exc:
                raise InvalidInput(f"{self.name}: not a readable CSV file ({exc})", field="file") from None
            if not header:
                raise InvalidInput(f"{self.name}: the file is empty; a header row is needed", field="file")
            self._header = [h.strip() for h in header]
        return self._header

    def rows(self, on_error: Callable[[int, str], None]) -> Iterator[tuple[int, list[str]]]:
        """The data rows with their line numbers (the header is line 1). Read once.

        A row the csv module can't read (a NUL byte, an endless quoted field) goes to `on_error` with its
        line number; reading goes on with the next line. Blank lines are passed over.
        """
        self.header()
        assert self._reader is not None
        return self._data(self._reader, on_error)

    def _data(self, reader: _Reader, on_error: Callable[[int, str], None]) -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                for row in reader:
                    if row:
                        yield reader.line_num, row
                return
            except csv.Error as exc:
                on_error(reader.line_num, str(exc))
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"{self.name}: not UTF-8 text after line {reader.line_num} ({exc.reason}); save the "
                    "file as UTF-8",
                    field="file",
                ) from None
            except (gzip.BadGzipFile, EOFError) as exc:
                raise InvalidInput(f"{self.name}: a broken gzip file ({exc})", field="file") from None

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
        self.raw.close()


def sniffed_reader(lines: Iterable[str], sample: str) -> _Reader:
    """The one way a CSV is read: a `csv.reader` over `lines` (read with `newline=""`), its delimiter
    sniffed from `sample`, the text's first whole lines (`first_lines`)."""
    return csv.reader(lines, delimiter=sniff_delimiter(sample))


def first_lines(text: str) -> str:
    """The sample a delimiter is sniffed from: the first `SNIFF_CHARACTERS`, to the end of that line."""
    end = text.find("\n", SNIFF_CHARACTERS)
    return text if end < 0 else text[: end + 1]


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV's first lines: a comma, semicolon, tab or bar (a comma when unsure)."""
    if not sample.strip():
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def open_file(path: Path) -> Source:
    """A CSV file, gzip-compressed or not (told by its first bytes, not its name)."""
    try:
        raw = path.open("rb")
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    return Source(str(path), raw, size)


def open_sample() -> Source:
    """The sample of the UCI Online Retail data bundled with the package (see shopkeeper/data/README.md)."""
    data = (files("shopkeeper") / "data" / SAMPLE_NAME).read_bytes()
    return Source(f"the bundled sample ({SAMPLE_NAME})", io.BytesIO(data), len(data))
