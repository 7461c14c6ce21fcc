"""People whose names break careless merge fields: the profiles a template preview is rendered for.

Each profile is the traits a shop might really hold for someone (Segment's `firstName`, `lastName`,
`name`, `email`, and `size`), labelled in a few words for the preview. Between them they cover what
goes wrong in the field: nothing at all, the wrong case, names that simple title-casing mangles, a whole
name or a company where a first name should be, test data, scripts written right to left, combining
marks, great length, and values that are markup, template syntax or a bidi override. A template whose
preview reads well for every one of them greets real people well. Pure data: no logic here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostileProfile:
    """One awkward person: a short `label` for the preview, and their traits by Segment key."""

    label: str
    traits: Mapping[str, str]


# 300 characters: the given names and the start of the surname of "Hubert Blaine Wolfeschlegelstein-
# hausenbergerdorff Sr.", cut where the 300th character falls.
_LONG_NAME = (
    "Adolph Blaine Charles David Earl Frederick Gerald Hubert Irvin John Kenneth Lloyd Martin Nero Oliver "
    "Paul Quincy Randolph Sherman Thomas Uncas Victor William Xerxes Yancy Zeus "
    "Wolfeschlegelsteinhausenbergerdorff "
    "Welchevoralternwarengewissenhaftschaferswessenschafewarenwohlgepflegeundsorgfaltigkeitbe"
)

HOSTILE_PROFILES: tuple[HostileProfile, ...] = (
    HostileProfile("no name at all", {"firstName": "", "lastName": "", "name": "", "email": ""}),
    HostileProfile(
        "only spaces",
        {"firstName": "   ", "lastName": "\t", "name": " \u00a0 ", "email": "space@example.com", "size": "M"},
    ),
    HostileProfile(
        "ALL CAPS",
        {
            "firstName": "JOHN",
            "lastName": "SMITH",
            "name": "JOHN SMITH",
            "email": "JOHN.SMITH@EXAMPLE.COM",
            "size": "M",
        },
    ),
    HostileProfile(
        "all lower case",
        {
            "firstName": "john",
            "lastName": "smith",
            "name": "john smith",
            "email": "john.smith@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "lower-case Mc (mcdonald)",
        {
            "firstName": "angus",
            "lastName": "mcdonald",
            "name": "angus mcdonald",
            "email": "angus@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "apostrophe (O'Brien)",
        {
            "firstName": "Siobhan",
            "lastName": "O'Brien",
            "name": "Siobhan O'Brien",
            "email": "siobhan@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "hyphenated (Jean-Luc)",
        {
            "firstName": "Jean-Luc",
            "lastName": "Picard",
            "name": "Jean-Luc Picard",
            "email": "jl@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "surname particle (van der Berg)",
        {
            "firstName": "Anouk",
            "lastName": "van der Berg",
            "name": "Anouk van der Berg",
            "email": "anouk@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "initials only",
        {
            "firstName": "J. R.",
            "lastName": "Tolkien",
            "name": "J. R. Tolkien",
            "email": "jrr@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "full name as first name",
        {
            "firstName": "Lester Wunderman",
            "lastName": "",
            "name": "Lester Wunderman",
            "email": "lester@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "company as name",
        {
            "firstName": "Acme Trading Ltd",
            "lastName": "",
            "name": "Acme Trading Ltd",
            "email": "accounts@acme.example",
            "size": "M",
        },
    ),
    HostileProfile(
        "test data",
        {
            "firstName": "Test",
            "lastName": "Test",
            "name": "Test Test",
            "email": "test@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "emoji",
        {"firstName": "😀", "lastName": "🎉", "name": "😀 🎉", "email": "smile@example.com", "size": "M"},
    ),
    HostileProfile(
        "right-to-left (Arabic)",
        {
            "firstName": "محمد",
            "lastName": "الأحمد",
            "name": "محمد الأحمد",
            "email": "mohammed@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "right-to-left (Hebrew)",
        {"firstName": "דוד", "lastName": "כהן", "name": "דוד כהן", "email": "david@example.com", "size": "M"},
    ),
    HostileProfile(
        "combining accent (Élodie, decomposed)",
        {
            "firstName": "E\u0301lodie",
            "lastName": "Lefe\u0300vre",
            "name": "E\u0301lodie Lefe\u0300vre",
            "email": "elodie@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "300-character name",
        {
            "firstName": _LONG_NAME,
            "lastName": "Sr",
            "name": f"{_LONG_NAME} Sr",
            "email": "long@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "HTML in the name",
        {
            "firstName": "<script>alert(1)</script>",
            "lastName": '<img src=x onerror="alert(2)">',
            "name": "<script>alert(1)</script> <b>Bold</b>",
            "email": "xss@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "template syntax ({{ }})",
        {
            "firstName": "{{ 7*7 }}",
            "lastName": "{{ 7*7 }}",
            "name": "{{ 7*7 }} {{ 7*7 }}",
            "email": "ssti@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "template syntax ({% %})",
        {
            "firstName": "{% for x in range(10**9) %}",
            "lastName": "{% endfor %}",
            "name": "{% for x in range(10**9) %}{% endfor %}",
            "email": "loop@example.com",
            "size": "M",
        },
    ),
    HostileProfile(
        "bidi override",
        {
            "firstName": "Bob\u202eevil",
            "lastName": "\u2067Smith\u2069",
            "name": "Bob\u202eevil Smith",
            "email": "bidi@example.com",
            "size": "M",
        },
    ),
)
