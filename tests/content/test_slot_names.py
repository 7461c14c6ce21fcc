"""The slot check for names: first and full names, re-cased for the greeting only, and salutations."""

from __future__ import annotations

import pytest
from tests.content.support import PLACEHOLDERS, stated

from shopkeeper.content.slots import Checked

# --- names ------------------------------------------------------------------------------------------------

FIRST_NAMES: list[tuple[str, str | None, str | None]] = [
    # value, what goes into the copy, the reason it fails
    ("Ana", "Ana", None),
    ("JOHN", "John", None),
    ("john", "John", None),
    ("mcdonald", "McDonald", None),
    ("O'BRIEN", "O'Brien", None),
    ("o'brien", "O'Brien", None),
    ("jean-luc", "Jean-Luc", None),
    ("Jean-Luc", "Jean-Luc", None),
    ("DeShawn", "DeShawn", None),
    ("McDonald", "McDonald", None),
    ("MACDONALD", "MacDonald", None),  # nameparser's choice
    ("JOSÉ", "José", None),
    ("e\u0301lise", "Élise", None),
    ("محمد", "محمد", None),  # Arabic: no case, unchanged
    ("דוד", "דוד", None),  # Hebrew
    ("伟", "伟", None),  # a whole given name in one character, not an initial
    ("सीता", "सीता", None),  # ends in a vowel sign (a combining mark)
    ("😀 Ana", "Ana", None),  # emoji are decoration: taken out
    ("Ana 💕", "Ana", None),
    ("Bo\x00b", "Bob", None),
    ("", None, "empty"),
    ("   ", None, "empty"),
    ("😀", None, "not a name"),
    ("😀😀 ✨", None, "not a name"),
    ("<b>Bob</b>", None, "not a name"),
    ("'John'", None, "not a name"),
    ("Bob!", None, "not a name"),
    ("{{ first_name }}", None, "a raw merge tag"),
    ("Lester Wunderman", None, "a full name in a first-name slot"),
    ("LESTER WUNDERMAN", None, "a full name in a first-name slot"),
    ("Mary Ann", None, "a full name in a first-name slot"),  # nameparser finds a first and a last name
    ("van der Berg", None, "a full name in a first-name slot"),
    ("Smith, John", None, "a full name in a first-name slot"),
    ("John Jr", None, "a full name in a first-name slot"),
    ("Mr John", None, "a title in a first-name slot"),
    ("Mr", None, "a title, not a name"),
    ("dr.", None, "a title, not a name"),
    ("J.", None, "initials only"),
    ("J", None, "initials only"),
    ("J. R.", None, "initials only"),
    ("J.R.", None, "initials only"),
    ("Acme Ltd", None, "a company name"),
    ("Acme GmbH", None, "a company name"),
    ("Widgets Inc.", None, "a company name"),
    ("Acme LLC", None, "a company name"),
    ("Acme & Co.", None, "not a name"),
    ("Smith & Co.", None, "not a name"),
    ("Jones Co.", None, "a company name"),
    ("Tesco plc", None, "a company name"),
    ("Nestlé S.A.", None, "a company name"),
    ("Siemens AG", None, "a company name"),
    ("Philips BV", None, "a company name"),
    ("Acme Limited", None, "a company name"),
    ("Acme Corp", None, "a company name"),
    ("Bob1", None, "digits in a name"),
    ("R2D2", None, "digits in a name"),
    ("bob@example.com", None, "an email address"),
    ("x" * 41, None, "too long for a first name"),
    ("A" * 300, None, "too long for a first name"),
    ("Bob" * 5_000, None, "too long for a first name"),
]


@pytest.mark.parametrize(("value", "expected", "reason"), FIRST_NAMES)
def test_first_name(value: str, expected: str | None, reason: str | None) -> None:
    assert stated("first_name", value) == Checked(expected, reason)


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
@pytest.mark.parametrize("slot", ["first_name", "full_name"])
def test_a_placeholder_name_fails_in_any_case(slot: str, placeholder: str) -> None:
    for value in (placeholder, placeholder.upper(), placeholder.title(), f" {placeholder} "):
        assert stated(slot, value) == Checked(None, "a placeholder name")
    assert stated(slot, "Test User") == Checked(None, "a placeholder name")  # every word a placeholder
    assert stated(slot, "😀 test") == Checked(None, "a placeholder name")


def test_a_first_name_of_forty_characters_passes() -> None:
    assert stated("first_name", "A" + "b" * 39).value == "A" + "b" * 39


FULL_NAMES: list[tuple[str, str | None, str | None]] = [
    ("Lester Wunderman", "Lester Wunderman", None),
    ("LESTER WUNDERMAN", "Lester Wunderman", None),
    ("lester wunderman", "Lester Wunderman", None),
    ("van der Berg", "van der Berg", None),  # mixed case: as written
    ("Van Der Berg", "Van Der Berg", None),
    ("VAN DER BERG", "Van der Berg", None),  # nameparser keeps the particle low, after a first name
    ("ludwig van beethoven", "Ludwig van Beethoven", None),
    ("JOSÉ DE LA CRUZ", "José de la Cruz", None),
    ("mary o'brien-mcdonald", "Mary O'Brien-McDonald", None),
    ("Jean-Luc Picard", "Jean-Luc Picard", None),
    ("SMITH, JOHN", "John Smith", None),  # nameparser reads the comma and writes the name in order
    ("Smith, John", "John Smith", None),
    ("Dr John Smith", "Dr John Smith", None),
    ("J. R. R. Tolkien", "J. R. R. Tolkien", None),
    ("Madonna", "Madonna", None),
    ("محمد علي", "محمد علي", None),
    ("😀 Ana Lima", "Ana Lima", None),
    ("Acme Ltd", None, "a company name"),
    ("J. R.", None, "initials only"),
    ("Mr", None, "a title, not a name"),
    ("John Smith 3", None, "digits in a name"),
    ("john@smith.com", None, "an email address"),
    ("<b>Bob</b> Smith", None, "not a name"),
    ("${name}", None, "a raw merge tag"),
    ("A" + "b" * 79, "A" + "b" * 79, None),
    ("A" * 81, None, "too long for a full name"),
    ("Ab " * 100, None, "too long for a full name"),
]


@pytest.mark.parametrize(("value", "expected", "reason"), FULL_NAMES)
def test_full_name(value: str, expected: str | None, reason: str | None) -> None:
    assert stated("full_name", value) == Checked(expected, reason)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("Mr", "Mr"), ("mr.", "Mr"), ("MRS", "Mrs"), ("Ms.", "Ms"), ("miss", "Miss"), ("Mx", "Mx")],
        *[("DR.", "Dr"), ("prof", "Prof"), (" Prof. ", "Prof"), ("M\u202er", "Mr")],
        *[("Sir", None), ("Mr..", None), ("Mister", None), ("Mr Smith", None), ("{{ salutation }}", None)],
    ],
)
def test_salutation(value: str, expected: str | None) -> None:
    checked = stated("salutation", value)
    assert checked.value == expected
    assert (checked.reason is None) is (expected is not None)
