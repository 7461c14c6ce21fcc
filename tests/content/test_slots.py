"""The slot check (issue 14): merge fields that never embarrass the shop.

"Dear Lester Wunderman" (a full name in a first-name slot), "Hi JOHN", "Dear TEST", empty fields, guessed
salutations: each table below holds the hostile values for one slot and what `check` must make of them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.content.support import NOW, PLACEHOLDERS, stated

from shopkeeper.content.slots import SOURCES, Checked, check

SLOTS = ("first_name", "full_name", "salutation", "text", "number", "money", "date", "size", "item", "items")
SLOTS += ("url",)
STRING_SLOTS = ("first_name", "full_name", "salutation", "text", "size", "url")
# What a passed value may never hold: control characters, and bidi overrides, embeddings and isolates.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What a cleaned string may never hold: the above, and bidi marks and zero-width characters.
INVISIBLE = re.compile(f"{FORBIDDEN.pattern[:-1]}\u200e\u200f\u061c\u200b-\u200d\ufeff\u2060]")


# --- sources ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "weakest", "passes"),
    [
        ("inferred", "inferred", True),
        ("inferred", "observed", False),
        ("inferred", "stated", False),
        ("observed", "inferred", True),
        ("observed", "observed", True),
        ("observed", "stated", False),
        ("stated", "inferred", True),
        ("stated", "observed", True),
        ("stated", "stated", True),
    ],
)
def test_a_source_weaker_than_the_field_takes_fails(source: str, weakest: str, passes: bool) -> None:
    checked = check("first_name", "Ana", source=source, weakest_source=weakest)
    assert (checked.value == "Ana") is passes
    assert (checked.reason is None) is passes


def test_the_weak_source_reason_says_what_it_was_and_what_the_field_takes() -> None:
    assert check("text", "hi", source="inferred").reason == (
        "a guess (inferred) where the field takes observed or better"
    )
    assert check("text", "hi", source="observed", weakest_source="stated").reason == (
        "an observation (observed) where the field takes only stated"
    )


def test_sources_are_listed_weakest_first() -> None:
    assert SOURCES == ("inferred", "observed", "stated")


@pytest.mark.parametrize("weakest", SOURCES)
@pytest.mark.parametrize("source", ["inferred", "observed"])
def test_a_salutation_passes_only_when_stated(source: str, weakest: str) -> None:
    checked = check("salutation", "Mr", source=source, weakest_source=weakest)
    assert checked == Checked(None, "a salutation the person did not state")
    assert check("salutation", "Mr", source="stated", weakest_source=weakest).value == "Mr"


def test_an_unknown_source_fails_rather_than_raises() -> None:
    assert check("text", "hi", source="rumoured").reason == "an unknown source"


def test_an_unknown_slot_or_weakest_source_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown slot"):
        check("nickname", "Bob", source="stated")
    with pytest.raises(ValueError, match="unknown weakest_source"):
        check("text", "hi", source="stated", weakest_source="guessed")
    with pytest.raises(ValueError, match="max_length"):
        check("text", "hi", source="stated", max_length=0)


@pytest.mark.parametrize("slot", SLOTS)
def test_none_is_no_value(slot: str) -> None:
    assert stated(slot, None) == Checked(None, "no value")


# --- cleaning, for every string ---------------------------------------------------------------------------

HIDDEN = [
    ("\x00", "NUL"),
    ("\x07", "bell"),
    ("\x1b", "escape"),
    ("\x7f", "delete"),
    ("\x9b", "C1 CSI"),
    ("\u202a", "LRE"),
    ("\u202b", "RLE"),
    ("\u202c", "PDF"),
    ("\u202d", "LRO"),
    ("\u202e", "RLO"),
    ("\u2066", "LRI"),
    ("\u2067", "RLI"),
    ("\u2068", "FSI"),
    ("\u2069", "PDI"),
    ("\u200e", "LRM"),
    ("\u200f", "RLM"),
    ("\u061c", "ALM"),
    ("\u200b", "zero-width space"),
    ("\u200c", "ZWNJ"),
    ("\u200d", "ZWJ"),
    ("\ufeff", "BOM"),
    ("\u2060", "word joiner"),
    ("\ud800", "lone surrogate"),
]


@pytest.mark.parametrize(("char", "label"), HIDDEN)
@pytest.mark.parametrize(("slot", "expected"), [("first_name", "Bob"), ("text", "Bob"), ("size", "Bob")])
def test_control_bidi_and_zero_width_characters_are_removed(
    char: str, label: str, slot: str, expected: str
) -> None:
    assert stated(slot, f"{char}B{char}o{char}b{char}").value == expected, label


def test_a_right_to_left_override_cannot_reorder_a_name() -> None:
    assert stated("first_name", "Bob\u202eevil").value == "Bobevil"
    assert stated("full_name", "Bob \u202eevil").value == "Bob evil"


@pytest.mark.parametrize("slot", STRING_SLOTS)
@pytest.mark.parametrize("value", ["", "   ", "\t\n\r ", "\u200b\u200b", "\u202e", "\ufeff \x00"])
def test_an_empty_or_invisible_value_fails(slot: str, value: str) -> None:
    assert stated(slot, value) == Checked(None, "empty")


def test_whitespace_and_newlines_become_one_space_in_text() -> None:
    assert stated("text", "  Back\n\n in \t stock\r\n  ").value == "Back in stock"


@pytest.mark.parametrize(
    ("slot", "value", "expected"),
    [
        # A tab between two names is a space, not a join: "Bob\tSmith" is not a first name "BobSmith".
        ("first_name", "Bob\tSmith", None),
        ("full_name", "Bob\tSmith", "Bob Smith"),
        ("full_name", "Bob\n\nSmith", "Bob Smith"),
        ("full_name", "Bob   Smith", "Bob Smith"),
    ],
)
def test_whitespace_inside_names_is_one_space(slot: str, value: str, expected: str | None) -> None:
    assert stated(slot, value).value == expected


@pytest.mark.parametrize("slot", ["first_name", "full_name", "text"])
def test_combining_characters_are_composed(slot: str) -> None:
    assert stated(slot, "E\u0301lise").value == "\u00c9lise"
    assert stated(slot, "Zoe\u0308").value == "Zo\u00eb"


MERGE_TAGS = [
    "{{ first_name }}",
    "{{first_name}}",
    "{{ contact.firstname | default('') }}",
    "{% if x %}",
    "{leadfield=firstname}",
    "{!Contact.FirstName}",
    "%FIRSTNAME%",
    "*|FNAME|*",
    "[first name]",
    "${name}",
    "<%= name %>",
]


@pytest.mark.parametrize("tag", MERGE_TAGS)
@pytest.mark.parametrize("slot", ["first_name", "full_name", "text"])
def test_an_unfilled_merge_tag_fails(slot: str, tag: str) -> None:
    assert stated(slot, tag) == Checked(None, "a raw merge tag")


def test_markup_inside_text_is_data_and_template_syntax_never_passes() -> None:
    # The renderer escapes markup; template syntax anywhere in a value would read as a raw tag in copy.
    assert stated("text", "Save 20% on <b>boots</b>").value == "Save 20% on <b>boots</b>"
    for tagged in ("Save {{ 20 }}% on boots", "Hi {% if x %}", "note {# x #}", "Dear *|FNAME|*, hi"):
        assert stated("text", tagged) == Checked(None, "a raw merge tag")


# --- text -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "reason"),
    [
        ("Back in stock", "Back in stock", None),
        ("<b>Bob</b>", "<b>Bob</b>", None),
        (12, "12", None),
        (1.5, "1.5", None),
        (Decimal("2.50"), "2.50", None),
        (float("nan"), None, "not text"),
        (float("inf"), None, "not text"),
        (True, None, "not text"),
        (["a"], None, "not text"),
        ({"a": 1}, None, "not text"),
        (10**200, None, "not text"),
    ]
    + [
        (p, None, "a placeholder") for p in ("n/a", "N/A", "null", "NULL", "None", "undefined", "nan", "Test")
    ],
)
def test_text(value: Any, expected: str | None, reason: str | None) -> None:
    assert stated("text", value) == Checked(expected, reason)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("one two three four", 10, "one two…"),
        ("one two three four", 9, "one two…"),
        ("one two three four", 8, "one two…"),  # the ellipsis counts
        ("one two three four", 7, "one…"),
        ("one two, three", 10, "one two…"),  # no dangling comma before the ellipsis
        ("Supercalifragilistic", 8, "Superca…"),  # one word longer than the limit: cut mid-word
        ("abc", 1, "…"),
    ],
)
def test_text_is_cut_at_a_word_boundary(value: str, limit: int, expected: str) -> None:
    checked = stated("text", value, max_length=limit)
    assert checked.value == expected
    assert len(checked.value) <= limit


def test_text_is_cut_to_200_by_default() -> None:
    value = stated("text", "word " * 100).value
    assert len(value) <= 200
    assert value.endswith("word…")
    assert stated("text", "y" * 200).value == "y" * 200


def test_a_huge_text_is_read_in_part_and_marked_cut() -> None:
    value = stated("text", "word " * 100_000, max_length=100_000).value
    assert value.endswith("…")
    assert len(value) < 100_000


# --- numbers, money, dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (1234.5, "en", "1,234.5"),
        (1234.5, "de", "1.234,5"),
        (1234.5, "fr", "1\u202f234,5"),
        (1234.5, "de-DE", "1.234,5"),
        (1234.5, "de_CH", "1'234.5"),  # Swiss grouping, as babel's CLDR has it
        (1234.5, "de_XX", "1.234,5"),  # an unknown region: the language alone
        (1234, "en", "1,234"),
        (Decimal("0.1"), "en", "0.1"),
        (0.1, "en", "0.1"),
        ("  42 ", "en", "42"),
        ("-0", "en", "0"),
        (-0.0001, "en", "0"),
        (2.0005, "en", "2"),
    ],
)
def test_number_is_formatted_by_babel(value: Any, locale: str, expected: str) -> None:
    assert stated("number", value, locale=locale) == Checked(expected, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "not a number"),
        (float("inf"), "not a number"),
        (float("-inf"), "not a number"),
        (Decimal("NaN"), "not a number"),
        (Decimal("sNaN"), "not a number"),
        ("Infinity", "not a number"),
        (True, "not a number"),
        (False, "not a number"),
        ("twelve", "not a number"),
        ("1,234", "not a number"),
        ([1], "not a number"),
        ("9" * 100, "not a number"),
        (10**18, "an implausible number"),
        (1e300, "an implausible number"),
    ],
)
def test_a_value_that_is_not_a_plausible_number_fails(value: Any, reason: str) -> None:
    assert stated("number", value) == Checked(None, reason)


@pytest.mark.parametrize("locale", ["xx", "", "not a locale at all", "en_US_" + "x" * 40])
def test_an_unknown_locale_fails_the_formatted_slots(locale: str) -> None:
    for slot, value in (("number", 1), ("money", 1), ("date", "2024-03-05")):
        assert stated(slot, value, locale=locale, currency="EUR") == Checked(None, "an unknown locale")


@pytest.mark.parametrize(
    ("value", "options", "expected", "reason"),
    [
        (19.99, {"currency": "EUR"}, "€19.99", None),
        ("19.99", {"currency": "eur"}, "€19.99", None),
        (Decimal("19.99"), {"currency": "EUR", "locale": "de"}, "19,99\xa0€", None),
        (1234.5, {"currency": "USD", "locale": "en"}, "$1,234.50", None),
        (1234, {"currency": "JPY", "locale": "ja"}, "￥1,234", None),  # CLDR's full-width yen sign
        (19.99, {}, None, "no currency"),
        (19.99, {"currency": "XYZ"}, None, "an unknown currency"),
        (19.99, {"currency": "euro"}, None, "an unknown currency"),
        (0, {"currency": "EUR"}, None, "an implausible price"),
        (-5, {"currency": "EUR"}, None, "an implausible price"),
        (0.001, {"currency": "EUR"}, None, "an implausible price"),  # "€0.00" once rounded
        (0.4, {"currency": "JPY"}, None, "an implausible price"),
        (10**16, {"currency": "EUR"}, None, "an implausible price"),
        (float("nan"), {"currency": "EUR"}, None, "not a number"),
        (True, {"currency": "EUR"}, None, "not a number"),
        (20, {"currency": "EUR", "catalog_price": 20.0}, "€20.00", None),
        (4, {"currency": "EUR", "catalog_price": 20.0}, "€4.00", None),  # 20% of it: still near
        (3.99, {"currency": "EUR", "catalog_price": 20.0}, None, "far from the catalog price"),
        (100, {"currency": "EUR", "catalog_price": 20.0}, "€100.00", None),  # 5x: still near
        (100.01, {"currency": "EUR", "catalog_price": 20.0}, None, "far from the catalog price"),
        (2000, {"currency": "EUR", "catalog_price": 20.0}, None, "far from the catalog price"),
        (20, {"currency": "EUR", "catalog_price": 0.0}, None, "an implausible catalog price"),
        (20, {"currency": "EUR", "catalog_price": float("nan")}, None, "an implausible catalog price"),
    ],
)
def test_money(value: Any, options: dict[str, Any], expected: str | None, reason: str | None) -> None:
    assert stated("money", value, **options) == Checked(expected, reason)


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (date(2024, 3, 5), "en", "March 5, 2024"),
        (date(2024, 3, 5), "en-GB", "5 March 2024"),
        (date(2024, 3, 5), "de", "5. März 2024"),
        (datetime(2024, 3, 5, 23, 30, tzinfo=UTC), "en", "March 5, 2024"),
        ("2024-03-05", "en", "March 5, 2024"),
        ("2024-03-05T10:00:00Z", "en", "March 5, 2024"),
        (" 2024-03-05T10:00:00+02:00\n", "en", "March 5, 2024"),
        (date(1875, 6, 2), "en", "June 2, 1875"),
        (date(2030, 6, 1), "en", "June 1, 2030"),
    ],
)
def test_date_is_formatted_long_by_babel(value: Any, locale: str, expected: str) -> None:
    assert stated("date", value, locale=locale) == Checked(expected, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (date(1875, 5, 31), "a date more than 150 years ago"),
        (date(1, 1, 1), "a date more than 150 years ago"),
        (date(2030, 6, 2), "a date more than 5 years ahead"),
        ("9999-12-31", "a date more than 5 years ahead"),
        ("2024-02-30", "not a date"),
        ("yesterday", "not a date"),
        ("2024-03-05" + " " * 100, "not a date"),
        (20240305, "not a date"),
        (True, "not a date"),
    ],
)
def test_an_implausible_date_fails(value: Any, reason: str) -> None:
    assert stated("date", value) == Checked(None, reason)


def test_a_coming_soon_date_in_the_past_fails() -> None:
    assert stated("date", date(2025, 5, 31), upcoming=True) == Checked(
        None, "a 'coming soon' date in the past"
    )
    assert stated("date", date(2025, 6, 1), upcoming=True).value == "June 1, 2025"
    assert stated("date", date(2025, 5, 31)).value == "May 31, 2025"  # not upcoming: the past is fine


def test_now_defaults_to_the_current_time() -> None:
    today = datetime.now(UTC).date()
    assert check("date", today.replace(year=today.year - 1), source="stated", upcoming=True).value is None
    assert check("date", today.replace(year=today.year + 1, day=1), source="stated").value is not None


# --- sizes and links --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "reason"),
    [
        ("42", "42", None),
        ("M", "M", None),
        ("m", "m", None),  # kept as written, not re-cased
        ("UK 8", "UK 8", None),
        ("XL", "XL", None),
        (" 34/32 ", "34/32", None),
        (42, "42", None),
        ("x" * 20, "x" * 20, None),
        ("x" * 21, None, "too long for a size"),
        ("n/a", None, "a placeholder"),
        ("unknown", None, "a placeholder"),
        ("-", None, "a placeholder"),
        ("{{ size }}", None, "a raw merge tag"),
        ("", None, "empty"),
        (True, None, "not text"),
    ],
)
def test_size(value: Any, expected: str | None, reason: str | None) -> None:
    assert stated("size", value) == Checked(expected, reason)


@pytest.mark.parametrize(
    ("value", "expected", "reason"),
    [
        ("https://shop.example/p/1?ref=mail#top", "https://shop.example/p/1?ref=mail#top", None),
        (" https://shop.example/p/1 ", "https://shop.example/p/1", None),
        ("HTTPS://SHOP.EXAMPLE/", "HTTPS://SHOP.EXAMPLE/", None),
        ("https://shop.example:8443/", "https://shop.example:8443/", None),
        ("https://shop.example/" + "a" * 1979, "https://shop.example/" + "a" * 1979, None),
        ("https://shop.example/" + "a" * 1980, None, "too long for a url"),
        ("http://shop.example/", None, "not https"),
        ("http://127.0.0.1:8000/preferences#token=x", "http://127.0.0.1:8000/preferences#token=x", None),
        ("http://localhost/p", "http://localhost/p", None),
        ("http://127.0.0.1.shop.example/", None, "not https"),
        ("ftp://shop.example/", None, "not https"),
        ("//shop.example/", None, "not https"),
        ("shop.example", None, "not https"),
        ("javascript:alert(1)", None, "a script or data url"),
        ("JavaScript:alert(1)", None, "a script or data url"),
        ("java\tscript:alert(1)", None, "not https"),  # a tab is a space here, and "java script" no scheme
        ("data:text/html,<script>alert(1)</script>", None, "a script or data url"),
        ("https://user:pass@shop.example/", None, "credentials in a url"),
        ("https://user@shop.example/", None, "credentials in a url"),
        ("https://", None, "not a url"),
        ("https:///path", None, "not a url"),
        ("https://shop .example/", None, "not a url"),
        ("https://[::1", None, "not a url"),
        ("https://shop.example:99999/", None, "not a url"),
        ("https://shop.example/\u202egpj.exe", "https://shop.example/gpj.exe", None),
        (42, None, "not text"),
    ],
)
def test_url(value: Any, expected: str | None, reason: str | None) -> None:
    assert stated("url", value) == Checked(expected, reason)


# --- reasons never carry the value ------------------------------------------------------------------------

PERSONAL = [
    ("first_name", "Lester Wunderman"),
    ("first_name", "lester@wunderman.example"),
    ("first_name", "Acme Holdings Ltd"),
    ("first_name", "Wunderman2"),
    ("full_name", "Wunderman " * 10),
    ("text", "{{ secret_field }}"),
    ("url", "https://lester:hunter2@shop.example/"),
    ("url", "ftp://wunderman.example/"),
    ("date", "1492-10-12"),
    ("number", "wunderman"),
    ("money", "123456789"),
]


@pytest.mark.parametrize(("slot", "value"), PERSONAL)
def test_a_reason_never_quotes_the_value(slot: str, value: str) -> None:
    checked = check(slot, value, source="stated", currency="EUR", catalog_price=10.0, now=NOW)
    assert checked.value is None
    assert checked.reason
    for word in re.findall(r"\w{4,}", value):
        assert word.casefold() not in checked.reason.casefold()


# --- never raises -----------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(
        alphabet=st.characters(
            codec=None, categories=["Cc", "Cf", "Cs", "Zs", "Zl", "Mn", "So", "Lu", "Ll", "Nd"]
        )
    ),
    st.sampled_from([*MERGE_TAGS, *PLACEHOLDERS, "https://shop.example/", "2024-03-05", "19.99", "Bob"]),
)
VALUES: st.SearchStrategy[Any] = st.deferred(
    lambda: (
        SCALARS
        | st.lists(VALUES, max_size=5)
        | st.dictionaries(
            st.sampled_from(["title", "url", "image_url", "price", "currency", "reason", "x"]),
            VALUES,
            max_size=5,
        )
        | st.dictionaries(st.text(max_size=5), VALUES, max_size=5)
    )
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, inner in value.items() for s in (*_strings(key), *_strings(inner))]
    if isinstance(value, list):
        return [s for inner in value for s in _strings(inner)]
    return []


@settings(max_examples=400, deadline=None)
@given(
    slot=st.sampled_from(SLOTS),
    value=VALUES,
    source=st.sampled_from(SOURCES),
    weakest=st.sampled_from(SOURCES),
    upcoming=st.booleans(),
)
def test_check_never_raises_and_passes_only_clean_strings(
    slot: str, value: Any, source: str, weakest: str, upcoming: bool
) -> None:
    checked = check(slot, value, source=source, weakest_source=weakest, currency="EUR", upcoming=upcoming)
    assert isinstance(checked, Checked)
    assert (checked.value is None) is (checked.reason is not None)
    for text in _strings(checked.value):
        assert not FORBIDDEN.search(text)
        assert text.encode("utf-8")  # no lone surrogate
        if slot in STRING_SLOTS or slot in ("item", "items"):
            assert not INVISIBLE.search(text)
            assert text == text.strip()
            assert text != ""


@settings(max_examples=200, deadline=None)
@given(
    slot=st.sampled_from(["number", "money", "date", "item"]),
    value=st.one_of(SCALARS, st.just({"title": "Boots", "price": 10, "currency": "EUR"})),
    locale=st.one_of(st.text(max_size=40), st.sampled_from(["en", "de-DE", "ar", "he", "fa", "ja", "zz"])),
    currency=st.one_of(st.none(), st.text(max_size=5), st.sampled_from(["EUR", "JPY", "KWD", "usd"])),
    catalog_price=st.one_of(st.none(), st.floats()),
)
def test_check_never_raises_whatever_the_locale_currency_and_catalog_price(
    slot: str, value: Any, locale: str, currency: str | None, catalog_price: float | None
) -> None:
    checked = check(
        slot, value, source="stated", locale=locale, currency=currency, catalog_price=catalog_price
    )
    assert (checked.value is None) is (checked.reason is not None)
    for text in _strings(checked.value):
        assert not FORBIDDEN.search(text)
