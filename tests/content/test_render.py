"""Templates: the outside shape, lint with line and column, guarded rendering, and the SSTI suite."""

from __future__ import annotations

import tracemalloc
from typing import Any

import orjson
import pytest
from tests.content.support import BACK_IN_STOCK

from shopkeeper.content.render import Value, render
from shopkeeper.content.template import Template, lint, parse_template
from shopkeeper.errors import InvalidInput

ITEM = {"item": {"title": "Grey trainers"}}


def template(**changes: Any) -> Template:
    return parse_template({**BACK_IN_STOCK, **changes})


def codes(found: Template) -> list[str]:
    return [f.code for f in lint(found)]


def test_the_issue_s_example_parses_lints_clean_and_renders() -> None:
    parsed = template()
    assert lint(parsed) == []
    done = render(parsed, {"firstName": Value("ADA", "stated"), "size": Value("42", "stated")}, provided=ITEM)
    assert done.aborted is None
    assert done.subject == "Ada, it's back in your size"
    assert done.html == "<p>Hi Ada,</p><p>Grey trainers is back in 42.</p>"
    b = render(
        parsed,
        {"firstName": Value("Ada", "observed"), "size": Value("42", "stated")},
        provided=ITEM,
        variant="b",
    )
    assert b.subject == "Good news, Ada"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "sms"}, "channel"),
        ({"html": None}, "html"),
        ({"subject": 3}, "subject"),
        ({"fields": {"first_name": {"slot": "nickname"}}}, "fields.first_name.slot"),
        ({"fields": {"f": {"slot": "text", "weakest_source": "rumour"}}}, "fields.f.weakest_source"),
        ({"fields": {"item": {"slot": "text"}}}, "fields.item"),
        ({"variants": {"b": {"footer": "x"}}}, "variants.b"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_malformed_template_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        template(**changes)
    assert caught.value.field == field


def test_lint_finds_each_problem_with_its_line_and_column() -> None:
    found = lint(
        template(
            subject="",
            html='<p>Hi {{ first_name }}</p>\n<a href="http://shop.example">{{ nickname }}</a>\n{% if x %}',
            fields={
                "first_name": {"slot": "first_name", "from": "name", "fallback": "there"},
                "guess": {"slot": "first_name", "from": "firstName", "weakest_source": "inferred"},
            },
            variants={"b": {"subject": "x" * 80}},
        )
    )
    by_code = {f.code: f for f in found}
    assert set(by_code) >= {
        "empty_subject",
        "long_subject",
        "syntax",
        "no_fallback",
        "inferred_greeting",
        "full_name_in_first_name",
    }
    assert by_code["long_subject"].part == "variants.b.subject"
    unclosed = by_code["syntax"]
    assert (unclosed.part, unclosed.line) == ("html", 3)
    styled = '<style>\n@import url("https://fonts.example/a.css");\n</style><link rel="stylesheet" href="https://x.example/s.css">'
    found = lint(template(html=styled + "<p>{{ first_name }}</p>"))
    assert [(f.code, f.line, f.column) for f in found] == [("remote_css", 2, 1), ("remote_css", 3, 9)]
    found = lint(template(html='<p>{{ first_name }}</p>\n<a href="http://x.example">{{ nickname }}</a>'))
    assert [(f.code, f.line, f.column) for f in found] == [("http_link", 2, 4), ("unknown_field", 2, 31)]


def test_a_person_without_a_value_gets_the_fallback_and_abort_stops_the_message() -> None:
    done = render(template(), {"size": Value("42", "stated")}, provided=ITEM)
    assert done.html == "<p>Hi there,</p><p>Grey trainers is back in 42.</p>"
    assert [(f.name, f.fallback_used) for f in done.fields] == [("first_name", True), ("size", False)]
    stopped = render(template(), {"firstName": Value("Ada", "stated")}, provided=ITEM)
    assert (stopped.html, stopped.subject) == (None, None)
    assert stopped.aborted == "size: no value"


def test_a_source_weaker_than_the_field_accepts_falls_back() -> None:
    done = render(
        template(), {"firstName": Value("Ada", "inferred"), "size": Value("42", "stated")}, provided=ITEM
    )
    assert done.subject == "there, it's back in your size"
    assert done.fields[0].fallback_used


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "{{ 7*7 }}", "{% raw %}x", "{{ ''.__class__ }}", "{leadfield=firstname}"],
)
def test_values_are_data_never_template_source(name: str) -> None:
    done = render(
        template(), {"firstName": Value(name, "stated"), "size": Value("42", "stated")}, provided=ITEM
    )
    assert done.aborted is None and done.html is not None and done.subject is not None
    for shown in (done.html, done.subject):
        assert "<script>" not in shown and "49" not in shown and "__class__" not in shown.replace("&#39;", "")
        assert "{leadfield" not in shown and "{{" not in shown


SSTI = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ first_name.__class__ }}",
    "{{ first_name['__class__'] }}",
    "{{ first_name|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner }}",
    "{{ namespace() }}",
    "{{ lipsum.__globals__ }}",
    "{{ range(10**9)|length }}",
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ request.environ }}",
    "{{ config.items() }}",
    "{{ '{0.__class__}'.format(first_name) }}",
    "{{ first_name.format_map({}) }}",
    "{% for x in first_name * 100000 %}{{ x }}{% endfor %}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
]


@pytest.mark.parametrize("payload", SSTI)
def test_server_side_template_injection_is_refused_in_bounded_time(payload: str) -> None:
    """Each payload, as template source: lint refuses it, and rendering it anyway executes nothing."""
    hostile = template(html=payload)
    assert lint(hostile), payload
    tracemalloc.start()
    try:
        done = render(
            hostile, {"firstName": Value("Ada", "stated"), "size": Value("42", "stated")}, provided=ITEM
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # a bomb is refused before it is built (a gigabyte), not after
    assert done.aborted is not None, payload
    assert done.html is None


@pytest.mark.parametrize("payload", SSTI)
def test_every_injection_payload_inside_a_trait_is_inert_data(payload: str) -> None:
    """The same payloads as a person's values (a note they typed, their name): never template source."""
    noted = template(
        html="<p>Hi {{ first_name }}: {{ note }}</p>",
        fields={
            **BACK_IN_STOCK["fields"],
            "note": {"slot": "text", "from": "note", "fallback": "thanks", "weakest_source": "stated"},
        },
    )
    values = {
        "firstName": Value(payload, "stated"),
        "note": Value(payload, "stated"),
        "size": Value("42", "stated"),
    }
    tracemalloc.start()
    try:
        done = render(noted, values, provided=ITEM)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert done.aborted is None and done.html is not None and done.subject is not None
    for shown in (done.html, done.subject):
        assert "{{" not in shown and "{%" not in shown  # a raw tag never reaches output
        assert "<class" not in shown and "&lt;class" not in shown and "999999" not in shown


@pytest.mark.parametrize("example", ["back_in_stock", "picked_for_you"])
@pytest.mark.parametrize("first_name", ["Ann", "O'Brien & <Co>", "محمد"])
def test_the_text_part_made_once_from_the_template_reads_as_each_email_s_own_would(
    example: str, first_name: str
) -> None:
    """The text part's template is made from the HTML template once (inscriptis); it must say what
    inscriptis would say of each rendered email."""
    from shopkeeper.content import EXAMPLES  # noqa: PLC0415
    from shopkeeper.content.email import text_from_html  # noqa: PLC0415
    from shopkeeper.content.render import text_template  # noqa: PLC0415

    body = orjson.loads((EXAMPLES / f"{example}.json").read_bytes())
    parsed = parse_template(body)
    assert text_template(parsed.html) is not None  # the examples take the cheap path
    picks = [
        {
            "title": "Red mug",
            "reason": "Because you bought Blue mug on 2 Dec 2026",
            "price": 2.5,
            "currency": "GBP",
        },
        {"title": "Lunch bag", "reason": "Popular this week", "url": "https://shop.example/bag"},
    ]
    values = {
        "firstName": Value(first_name, "stated"),
        "size": Value("M", "stated"),
        "preferences_url": Value("https://shop.example/preferences#token=x", "observed"),
    }
    item = {"title": "Grey trainers", "url": "https://shop.example/t", "price": 40, "currency": "GBP"}
    done = render(parsed, values, provided={"item": item, "items": picks})
    assert done.aborted is None and done.html is not None and done.text is not None
    assert done.text.split() == text_from_html(done.html).split()


def test_a_template_whose_tags_do_not_survive_inscriptis_gets_each_email_s_own_text() -> None:
    from shopkeeper.content.render import text_template  # noqa: PLC0415

    hidden = "<p>Hi {{ first_name }}</p><!-- {% if first_name %}{% endif %} -->"
    assert text_template(hidden) is None
    done = render(
        template(html="<p>Hi {{ first_name }}</p><p>{{ size }}</p><!-- {% if size %}{% endif %} -->"),
        {"firstName": Value("Ann", "stated"), "size": Value("M", "stated")},
        provided=ITEM,
    )
    assert done.aborted is None and done.html is not None
    assert done.text is None  # the service then makes it from this email's HTML
