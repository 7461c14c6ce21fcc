"""The slot check (issue 14): every value a message carries, checked and cleaned for the slot it fills.

The invariant: a value reaches the copy only through `check`, which lets it through only when it fits its
slot and comes from a source the field accepts. It never raises on a person's value: what it cannot use
comes back as `Checked(None, reason)`, and the renderer uses the field's fallback. A reason names the
problem, never the value: reasons are logged and counted, values are personal data.

How it is kept, with the choices made (each tested):
- Every string is cleaned first (`_clean`): control, format (bidi, zero-width) and surrogate characters
  removed, each run of whitespace (tabs and newlines too, in names as well) one space, NFC, stripped. A
  tab between two names is a space, so "Bob\tSmith" cannot become the first name "BobSmith".
- Names are read by nameparser, and re-cased by its `capitalize(force=True)` only when written in one case
  ("JOHN", "mcdonald"); "DeShawn" stays as written. A first name in which nameparser finds a last name is
  a full name, so "Mary Ann" fails the first-name slot ("Jean-Luc" is one word). Emoji in a name are
  decoration and are taken out ("😀 Ana" is "Ana"); markup or other symbols fail it. A lone letter is an
  initial only in a script with case ("伟" is a whole given name). A full name with a comma is written
  as nameparser orders it ("Smith, John" is "John Smith").
- Numbers, money and dates are formatted by babel in the person's locale ("en-GB" or "en_GB").

Speed: `check` runs about ten times an email, so the common path is a few set and regex look-ups;
nameparser (about 100 µs a parse) runs only for one-case or several-word names, cached per name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import islice
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_currency_precision, is_currency
from nameparser import HumanName

SOURCES = ("inferred", "observed", "stated")  # weakest first
_RANK = {source: rank for rank, source in enumerate(SOURCES)}
_SOURCE_NOUNS = {"inferred": "a guess", "observed": "an observation"}  # what can be too weak

MAX_RAW = 10_000  # characters read of any string; `text` longer than this is cut, other slots fail
TEXT_LENGTH = 200  # `text`'s cut when `max_length` is not given
TITLE_LENGTH = 120  # an item's title
REASON_LENGTH = 160  # an item's `reason`
FIELD_LENGTH = 1_000  # an item's other string fields
NAME_LENGTHS = {"first_name": 40, "full_name": 80}
SIZE_LENGTH = 20
URL_LENGTH = 2_000
ITEM_KEYS = 100  # keys read of one item
ITEMS_KEPT = 50
ITEMS_READ = 1_000  # candidates read of one list
LARGEST = Decimal(10) ** 15  # a number or price this large is a mistake, not a fact
PAST_YEARS, FUTURE_YEARS = 150, 5

_NAME_PLACEHOLDERS = frozenset(
    {"test", "asdf", "n/a", "na", "customer", "none", "null", "x", "xx", "unknown", "user", "guest"}
    | {"name", "first name", "fname", "-", "."}
)
_TEXT_PLACEHOLDERS = frozenset({"n/a", "null", "none", "undefined", "nan", "test", "-", ".", "?"})
_SIZE_PLACEHOLDERS = _TEXT_PLACEHOLDERS | _NAME_PLACEHOLDERS
_COMPANY_WORDS = frozenset(
    {"ltd", "ltd.", "gmbh", "inc", "inc.", "llc", "llc.", "co.", "plc", "s.a.", "ag", "bv", "b.v."}
    | {"limited", "corp", "corp."}
)
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mister"})
_SALUTATIONS = {word.lower(): word for word in ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof")}

_MERGE_TAG = re.compile(
    r"\{\{.*\}\}|\{%.*%\}|\{[^{}]*\}|\$\{[^{}]*\}|%[A-Za-z_][\w.:-]*%|\*\|[^|]*\|\*|\[[^\[\]]*\]|<%.*%>",
    re.DOTALL,
)
_TEMPLATE_TAG = re.compile(r"\{\{|\{%|\{#|\*\|[A-Z_]+\|\*")  # Jinja2's, and Mailchimp's *|FNAME|*
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DIGIT = re.compile(r"\d")
_NAME_PUNCTUATION = frozenset(" '\u2019\u02bc-\u2010\u2011.,")  # apostrophes and hyphens as names write them
_EMOJI_PARTS = frozenset(
    [chr(c) for c in range(0xFE00, 0xFE10)] + [chr(c) for c in range(0x1F3FB, 0x1F400)] + ["\u20e3"]
)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class Checked:
    """What `check` made of a value: the `value` to put in the copy, or None and the `reason` it failed."""

    value: Any  # a str; for `item` a dict[str, Any]; for `items` a list of them; None when it failed
    reason: str | None  # None when it passed; a short reason that never quotes the value


class _Context(NamedTuple):
    locale: str
    currency: str | None
    catalog_price: float | None
    now: datetime | None
    max_length: int | None
    upcoming: bool


def _fail(reason: str) -> Checked:
    return Checked(None, reason)


_NO_VALUE = _fail("no value")
_EMPTY = _fail("empty")
_MERGE = _fail("a raw merge tag")
_NOT_TEXT = _fail("not text")
_NOT_A_NAME = _fail("not a name")


def check(
    slot: str,
    value: Any,
    *,
    source: str,
    weakest_source: str = "observed",
    locale: str = "en",
    currency: str | None = None,
    catalog_price: float | None = None,
    now: datetime | None = None,
    max_length: int | None = None,
    upcoming: bool = False,
) -> Checked:
    """`value` checked and cleaned for `slot`, given where it came from (`source`: one of `SOURCES`).

    A value from a source weaker than `weakest_source` fails; a salutation passes only when stated.
    `max_length` is where `text` is cut (default 200); `currency` and `catalog_price` are for `money`;
    `upcoming` makes a `date` before `now` (default: the current UTC time) fail. An unknown slot or
    `weakest_source` raises ValueError: that is the caller's mistake, not the person's data.
    """
    handler = _HANDLERS.get(slot)
    if handler is None:
        raise ValueError(f"unknown slot {slot!r}: one of {', '.join(_HANDLERS)}")
    floor = _RANK.get(weakest_source)
    if floor is None:
        raise ValueError(f"unknown weakest_source {weakest_source!r}: one of {', '.join(SOURCES)}")
    if max_length is not None and max_length < 1:
        raise ValueError("max_length must be at least 1")
    if value is None:
        return _NO_VALUE
    rank = _RANK.get(source) if isinstance(source, str) else None
    if rank is None:
        return _fail("an unknown source")
    if slot == "salutation" and source != "stated":
        return _fail("a salutation the person did not state")
    if rank < floor:
        takes = "only stated" if weakest_source == "stated" else f"{weakest_source} or better"
        return _fail(f"{_SOURCE_NOUNS[source]} ({source}) where the field takes {takes}")
    return handler(value, _Context(locale, currency, catalog_price, now, max_length, upcoming))


# --- strings ----------------------------------------------------------------------------------------------


class _Invisible(dict[int, str | None]):
    """`str.translate`'s table for `_clean`, filled the first time each character is seen: whitespace
    becomes a space; control, format (bidi, zero-width) and surrogate characters go; the rest stay."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        kept = " " if char.isspace() else None if unicodedata.category(char) in ("Cc", "Cf", "Cs") else char
        if len(self) < 65_536:  # bounded, whatever characters a stranger sends
            self[code] = kept
        return kept


_INVISIBLE = _Invisible()


def _clean(text: str) -> str:
    """`text` without control or invisible characters, its whitespace runs one space, NFC, stripped."""
    if not text.isprintable():
        text = text.translate(_INVISIBLE)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _as_text(value: Any) -> str | None:
    """A str, or a number written as text; None for anything else (bool, containers, huge ints)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value.bit_length() <= 128 else None
    if isinstance(value, float | Decimal):
        return str(value) if _decimal(value) is not None else None  # not "nan", not "inf"
    return None


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut at a word boundary with "…", mid-word only for one word."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if text[limit - 1] != " ":
        space = head.rfind(" ")
        if space > 0:
            head = head[:space]
    return head.rstrip(" ,;:") + "…"


def _text(value: Any, limit: int, placeholders: frozenset[str] = _TEXT_PLACEHOLDERS) -> Checked:
    """Free text: cleaned, not a merge tag or one of the `placeholders`, cut to `limit`."""
    raw = _as_text(value)
    if raw is None:
        return _NOT_TEXT
    text = _clean(raw[:MAX_RAW])
    if not text:
        return _EMPTY
    if _MERGE_TAG.fullmatch(text) or _TEMPLATE_TAG.search(text):
        return _MERGE  # a whole merge tag, or template syntax anywhere in it: never shown as if it were copy
    if text.casefold() in placeholders:
        return _fail("a placeholder")
    if len(raw) > MAX_RAW and len(text) < limit:
        return Checked(text + "…", None)
    return Checked(_cut(text, limit), None)


def _size(value: Any, context: _Context) -> Checked:
    """A size as the shop writes it ("42", "M", "UK 8"), kept as written; a number as Python writes it."""
    checked = _text(value, MAX_RAW, _SIZE_PLACEHOLDERS)
    if checked.value is not None and len(checked.value) > SIZE_LENGTH:
        return _fail("too long for a size")
    return checked


# --- names ------------------------------------------------------------------------------------------------


class _Parsed(NamedTuple):
    first: str
    last: str
    title: str
    suffix: str
    written: str  # nameparser's rendering ("Smith, John" -> "John Smith")
    recased: str  # the same, capitalized with force=True


@lru_cache(maxsize=8_192)
def _parsed(name: str) -> _Parsed:
    """nameparser's reading of `name`, cached: a parse costs about 100 µs, and names repeat."""
    human = HumanName(name)
    first, last, title, suffix, written = human.first, human.last, human.title, human.suffix, str(human)
    human.capitalize(force=True)
    return _Parsed(first, last, title, suffix, written or name, str(human) or name)


def _placeholder(name: str) -> bool:
    folded = name.casefold()
    return folded in _NAME_PLACEHOLDERS or all(word in _NAME_PLACEHOLDERS for word in folded.split())


def _letters(name: str) -> str | None:
    """`name` with emoji taken out, or None when it holds what no name holds (markup, symbols) or starts
    or ends oddly ("'John'", "-Ann")."""
    kept = []
    for char in name:
        if char.isalpha() or char in _NAME_PUNCTUATION:
            kept.append(char)
            continue
        category = unicodedata.category(char)
        if category == "So" or char in _EMOJI_PARTS:
            continue
        if category[0] != "M":
            return None
        kept.append(char)
    letters = " ".join("".join(kept).split())
    if not letters or not letters[0].isalpha():
        return None
    last = letters[-1]
    if not (last.isalpha() or last == "." or unicodedata.category(last)[0] == "M"):
        return None
    return letters


def _initials_only(name: str) -> bool:
    """Every word one letter of a script with case: "J", "J.", "J. R." (not "伟", a whole given name)."""
    words = [word for word in re.split(r"[\s.]+", name) if word]
    return all(len(word) == 1 and (word.isupper() or word.islower()) for word in words)


def _name(value: Any, slot: str) -> Checked:
    """A first or full name, cleaned, judged and, when written in one case, re-cased by nameparser."""
    if not isinstance(value, str):
        return _NOT_TEXT
    limit = NAME_LENGTHS[slot]
    if len(value) > MAX_RAW:
        return _fail(f"too long for a {slot.replace('_', ' ')}")
    name = _clean(value)
    if not name:
        return _EMPTY
    if _MERGE_TAG.fullmatch(name):
        return _MERGE
    if _placeholder(name):
        return _fail("a placeholder name")
    if "@" in name and _EMAIL.fullmatch(name):
        return _fail("an email address")
    if len(name) > limit:
        return _fail(f"too long for a {slot.replace('_', ' ')}")
    if _DIGIT.search(name):
        return _fail("digits in a name")
    if not name.isalpha():  # one word of letters needs no more reading
        letters = _letters(name)
        if letters is None:
            return _NOT_A_NAME
        if letters != name and _placeholder(letters):
            return _fail("a placeholder name")
        name = letters
    words = name.casefold().replace(",", " ").split()
    if any(word in _COMPANY_WORDS for word in words):
        return _fail("a company name")
    if _initials_only(name):
        return _fail("initials only")
    if len(words) == 1 and words[0].rstrip(".") in _TITLES:
        return _fail("a title, not a name")
    one_case = name.isupper() or name.islower()
    if slot == "first_name":
        if len(words) > 1:
            parsed = _parsed(name)
            if parsed.title:
                return _fail("a title in a first-name slot")
            if parsed.last or parsed.suffix or "," in name:
                return _fail("a full name in a first-name slot")
        return Checked(_parsed(name).recased if one_case else name, None)
    if one_case:
        return Checked(_parsed(name).recased, None)
    return Checked(_parsed(name).written if "," in name else name, None)


def _salutation(value: Any, context: _Context) -> Checked:
    """Mr, Mrs, Ms, Miss, Mx, Dr or Prof, in any case, with or without a dot; written without one."""
    if not isinstance(value, str) or len(value) > MAX_RAW:
        return _NOT_TEXT
    word = _clean(value).lower()
    if not word:
        return _EMPTY
    canonical = _SALUTATIONS.get(word[:-1] if word.endswith(".") else word)
    return Checked(canonical, None) if canonical else _fail("not a salutation")


# --- numbers, money, dates --------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    """A finite number from an int, float, Decimal or numeric string; None for anything else (a bool,
    NaN, infinity, words, a 40-digit int)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # "0.1", not Decimal(0.1)'s 55 digits
    elif isinstance(value, int):
        if value.bit_length() > 128:
            return None
    elif not isinstance(value, str | Decimal) or (isinstance(value, str) and len(value) > 64):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@lru_cache(maxsize=256)
def _parsed_locale(name: str) -> Locale | None:
    """babel's Locale for "en-GB", "en_GB" or "de"; the language alone when the region is unknown."""
    identifier = name.replace("-", "_")
    for candidate in (identifier, identifier.split("_")[0]):
        try:
            return Locale.parse(candidate)
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return None


def _locale(name: Any) -> Locale | None:
    return _parsed_locale(name) if isinstance(name, str) and 0 < len(name) <= 35 else None


def _number(value: Any, context: _Context) -> Checked:
    """A finite number, formatted for the locale ("1,234.5"; "1.234,5" in German)."""
    number = _decimal(value)
    if number is None:
        return _fail("not a number")
    if abs(number) >= LARGEST:
        return _fail("an implausible number")
    locale = _locale(context.locale)
    if locale is None:
        return _fail("an unknown locale")
    rounded = number.quantize(Decimal("0.001")) + 0  # as babel shows it, and never "-0"
    return Checked(format_decimal(rounded, locale=locale), None)


def _money_text(value: Any, currency: Any, catalog_price: Any, locale_name: Any) -> Checked:
    """A price in `currency`, formatted for the locale. It fails at zero or below (also once rounded to
    the currency's digits), and below 20% or above 5x the `catalog_price` when one is given."""
    number = _decimal(value)
    if number is None:
        return _fail("not a number")
    if currency is None:
        return _fail("no currency")
    code = currency.upper() if isinstance(currency, str) else ""
    if not is_currency(code):
        return _fail("an unknown currency")
    if number <= 0 or number >= LARGEST:
        return _fail("an implausible price")
    if number.quantize(Decimal(1).scaleb(-get_currency_precision(code))) <= 0:
        return _fail("an implausible price")
    if catalog_price is not None:
        catalog = _decimal(catalog_price)
        if catalog is None or catalog <= 0:
            return _fail("an implausible catalog price")
        if number < catalog / 5 or number > catalog * 5:
            return _fail("far from the catalog price")
    locale = _locale(locale_name)
    if locale is None:
        return _fail("an unknown locale")
    return Checked(format_currency(number, code, locale=locale), None)


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _date(value: Any, context: _Context) -> Checked:
    """A date, datetime or ISO-8601 string, within 150 years back and 5 ahead, formatted long for the
    locale ("March 5, 2024"). With `upcoming`, a day before today (as `now` has it) fails."""
    when: date | None = value if isinstance(value, date) else None
    if isinstance(value, str) and len(value) <= 64:
        try:
            when = datetime.fromisoformat(_clean(value))
        except ValueError:
            when = None
    if when is None:
        return _fail("not a date")
    day = when.date() if isinstance(when, datetime) else when
    today = (context.now or datetime.now(UTC)).date()
    if day < _years_after(today, -PAST_YEARS):
        return _fail(f"a date more than {PAST_YEARS} years ago")
    if day > _years_after(today, FUTURE_YEARS):
        return _fail(f"a date more than {FUTURE_YEARS} years ahead")
    if context.upcoming and day < today:
        return _fail("a 'coming soon' date in the past")
    locale = _locale(context.locale)
    if locale is None:
        return _fail("an unknown locale")
    return Checked(format_date(day, format="long", locale=locale), None)


# --- links and catalog items ------------------------------------------------------------------------------


_THIS_MACHINE = frozenset({"localhost", "127.0.0.1", "::1"})


def _url(value: Any, context: _Context | None = None) -> Checked:
    """An https URL with a host and no credentials in it, at most 2,000 characters, returned as given. Plain
    http only to this machine (localhost, 127.0.0.1, ::1): a shop trying shopkeeper before it has a domain."""
    if not isinstance(value, str):
        return _NOT_TEXT
    url = _clean(value[: URL_LENGTH * 2])
    if not url:
        return _EMPTY
    if len(url) > URL_LENGTH:
        return _fail("too long for a url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not one)
    except ValueError:
        return _fail("not a url")
    scheme = parts.scheme.lower()
    if scheme in ("javascript", "data", "vbscript"):
        return _fail("a script or data url")
    if scheme != "https" and not (scheme == "http" and parts.hostname in _THIS_MACHINE):
        return _fail("not https")
    if "@" in parts.netloc:
        return _fail("credentials in a url")
    if " " in url or not parts.hostname:
        return _fail("not a url")
    return Checked(url, None)


def _item_field(key: str, raw: Any) -> Any:
    """One of an item's fields, checked for what its key says it is; None to drop it."""
    if key in ("url", "image_url"):
        return _url(raw).value
    if key == "reason":
        return _text(raw, REASON_LENGTH).value
    if key == "currency":
        code = raw.strip().upper() if isinstance(raw, str) else None
        return code if code and is_currency(code) else None
    if key == "price" and _decimal(raw) is None:
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return raw if raw.bit_length() <= 64 else None
    if isinstance(raw, float | Decimal):
        number = _decimal(raw)
        return float(number) if number is not None and abs(number) < LARGEST else None
    if isinstance(raw, str):
        return _cut(_clean(raw[:MAX_RAW]), FIELD_LENGTH) or None
    return None  # containers and other objects


def _item(value: Any, context: _Context) -> Checked:
    """A catalog item: a mapping with a usable `title` (cut to 120). A bad `url` or `image_url` is
    dropped, not the item; `price` with a currency (the item's own, else the check's) adds `price_text`,
    unless it is far from the item's `catalog_price` (when the caller's price is not the catalog's own).
    Other keys stay when they are plain names with str, int, float or bool values (strings cleaned)."""
    if not isinstance(value, Mapping):
        return _fail("not an item")
    title = _text(value.get("title"), TITLE_LENGTH)
    if title.value is None:
        return _fail("no usable title")
    item: dict[str, Any] = {"title": title.value}
    for key, raw in islice(value.items(), ITEM_KEYS):
        if isinstance(key, str) and key not in ("title", "price_text") and _KEY.fullmatch(key):
            kept = _item_field(key, raw)
            if kept is not None:
                item[key] = kept
    if "price" in item:
        currency = item.get("currency") if "currency" in value else context.currency
        price = _money_text(item["price"], currency, item.pop("catalog_price", None), context.locale)
        if price.value is not None:
            item["price_text"] = price.value
        elif price.reason == "far from the catalog price":
            del item["price"]  # a price the catalog does not back is not shown at all
    return Checked(item, None)


def _items(value: Any, context: _Context) -> Checked:
    """A list of items, each checked as `item`: bad ones dropped, at most 50 kept, none left fails."""
    if not isinstance(value, list | tuple):
        return _fail("not a list of items")
    kept = []
    for candidate in islice(value, ITEMS_READ):
        item = _item(candidate, context)
        if item.value is not None:
            kept.append(item.value)
            if len(kept) == ITEMS_KEPT:
                break
    return Checked(kept, None) if kept else _fail("no items")


_HANDLERS: dict[str, Callable[[Any, _Context], Checked]] = {
    "first_name": lambda value, _: _name(value, "first_name"),
    "full_name": lambda value, _: _name(value, "full_name"),
    "salutation": _salutation,
    "text": lambda value, context: _text(value, context.max_length or TEXT_LENGTH),
    "number": _number,
    "money": lambda value, c: _money_text(value, c.currency, c.catalog_price, c.locale),
    "date": _date,
    "size": _size,
    "item": _item,
    "items": _items,
    "url": _url,
}
