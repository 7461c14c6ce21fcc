"""The example emails shipped with the package, and the finishing step every email goes through.

The examples are rendered here with a bare Jinja2 sandbox (StrictUndefined, autoescape, no globals),
not with shopkeeper's renderer, so that they are checked as the JSON a shop would copy. `finish_email`
and `text_from_html` are tried on what breaks HTML tools: nothing, deep nesting, broken tags, every kind
of unicode, and a stylesheet link that must never be followed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from shopkeeper.content.email import finish_email, text_from_html
from shopkeeper.content.hostile import HOSTILE_PROFILES

EXAMPLES = ("back_in_stock", "price_drop", "picked_for_you")
PROVIDED = {"item", "items", "moment"}
SHOWN_PICKS = 4


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=html)
    env.globals.clear()
    return env


ENV = _environment(html=True)  # the HTML part
TEXT_ENV = _environment(html=False)  # the subject and preheader: headers, never HTML-escaped


def _example(name: str) -> dict[str, Any]:
    source = resources.files("shopkeeper.content").joinpath("examples", f"{name}.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(source)
    return loaded


def _item(title: str, stock_code: str, price: float, **more: Any) -> dict[str, Any]:
    """A catalog item as decide hands it to a template (titles and GBP prices from the bundled
    Online Retail sample, re-cased)."""
    return {
        "title": title,
        "url": f"https://shop.example/items/{stock_code}",
        "image_url": f"https://images.shop.example/{stock_code}.jpg",
        "price": price,
        "price_text": f"£{price:.2f}",
        "stock_code": stock_code,
        **more,
    }


PICKS = [
    _item(
        "White hanging heart T-light holder",
        "85123A",
        2.95,
        reason="Because you bought Red hanging heart T-light holder on 2 Dec 2026",
    ),
    _item(
        "Regency cakestand 3 tier", "22423", 12.75, reason="Popular with people who bought what you bought"
    ),
    _item(
        "Lunch bag apple design",
        "20725",
        1.65,
        reason="Because you bought Lunch bag red retrospot on 28 Nov 2026",
    ),
    _item(
        "Alarm clock bakelike green", "22726", 3.75, reason="Because you looked at Alarm clock bakelike red"
    ),
    _item("Jumbo bag red retrospot", "85099B", 2.08, reason="Because you bought Jumbo storage bag suki"),
]


def _values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "first_name": "Margaret",
        "size": "M",
        "shop_name": "Rosie's Gift Shop",
        "preferences_url": "https://shop.example/preferences?person=p-17850&sig=c2lnbmVk",
        "item": _item("Pink fairy cake childrens apron", "47559B", 1.95),
        "items": PICKS,
    }
    values.update(changes)
    return values


def _render(template: dict[str, Any], variant: str | None, values: dict[str, Any]) -> dict[str, str]:
    parts = {part: template[part] for part in ("subject", "preheader", "html")}
    if variant is not None:
        parts.update(template["variants"][variant])
    return {
        part: (ENV if part == "html" else TEXT_ENV).from_string(source).render(values)
        for part, source in parts.items()
    }


def _variants(name: str) -> list[str | None]:
    return [None, *_example(name)["variants"]]


CASES = [(name, variant) for name in EXAMPLES for variant in _variants(name)]


def _read_names(source: str) -> set[str]:
    """The variables a part reads, less those its own loops and sets bind (and `loop`)."""
    tree = ENV.parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")} | {"loop"}
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load" and n.name not in bound}


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_example_reads_only_its_declared_fields_and_what_the_caller_provides(name: str) -> None:
    template = _example(name)
    declared = set(template["fields"])
    assert not declared & PROVIDED
    sources = [template[p] for p in ("subject", "preheader", "html")]
    sources += [s for overrides in template["variants"].values() for s in overrides.values()]
    for source in sources:
        assert _read_names(source) <= declared | PROVIDED, source[:80]


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_example_is_self_contained_and_https_only(name: str) -> None:
    raw = json.dumps(_example(name))
    assert "http://" not in raw
    html = _example(name)["html"]
    assert "<link" not in html and "@import" not in html and "@font-face" not in html
    urls = re.findall(r"""(?:href|src)="([^"]*)\"""", html)
    assert urls and all(url.startswith("{{") for url in urls), (
        "every link and image is a field's or an item's"
    )
    assert "max-width: 600px" in html and "@media" in html
    assert 'class="preheader"' in html and "display: none" in html
    assert "You get this because you said yes to emails from {{ shop_name }}" in html
    assert 'href="{{ preferences_url }}"' in html
    assert template_subjects_fit(_example(name))


def template_subjects_fit(template: dict[str, Any]) -> bool:
    subjects = [template["subject"]] + [v["subject"] for v in template["variants"].values() if "subject" in v]
    return all(0 < len(subject) <= 78 for subject in subjects)


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_an_example_renders_to_a_finished_email(name: str, variant: str | None) -> None:
    rendered = _render(_example(name), variant, _values())
    for part, text in rendered.items():
        for leftover in ("{{", "{%", "None", "http://", "Undefined"):
            assert leftover not in text, f"{part} has {leftover!r}"
    assert len(rendered["subject"]) <= 78
    assert all(
        url.startswith("https://") for url in re.findall(r"""(?:href|src)="([^"]*)\"""", rendered["html"])
    )

    html, text = finish_email(rendered["html"])
    assert "<style" in html and "@media" in html, "the mobile rules stay in a <style>"
    assert re.search(r'<table[^>]*class="container"[^>]*style="[^"]*max-width:600px', html), "rules inlined"
    assert "Margaret" in text
    assert "Rosie's Gift Shop" in text
    assert "[Choose what we send you, or unsubscribe](https://shop.example/preferences?" in text
    assert "display" not in text and "{" not in text
    if name == "picked_for_you":
        for pick in PICKS[:SHOWN_PICKS]:
            assert pick["reason"] in text and pick["title"] in text and pick["price_text"] in text
        assert PICKS[SHOWN_PICKS]["reason"] not in text, "at most four picks are shown"
    elif name == "price_drop":
        assert "Pink fairy cake childrens apron" in text and "lower price" in text and "£1.95" in text
    else:
        assert "Pink fairy cake childrens apron" in text and "size M" in text and "£1.95" in text
    _assert_tidy(text)


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_item_without_a_price_text_or_an_image_leaves_no_gap_or_none(name: str) -> None:
    bare = {"title": "Red retrospot umbrella", "url": "https://shop.example/items/20679", "price": 5.95}
    values = _values(item=bare, items=[{**bare, "reason": "Because you looked at Red retrospot oven glove"}])
    rendered = _render(_example(name), None, values)
    assert "None" not in rendered["html"] and "<img" not in rendered["html"]
    _, text = finish_email(rendered["html"])
    assert "Red retrospot umbrella" in text and "£" not in text


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_first_name_fallback_reads_as_a_greeting(name: str) -> None:
    """The fallback `there` is written for "Hi ___": every greeting uses the name that way."""
    template = _example(name)
    assert template["fields"]["first_name"]["fallback"] == "there"
    for variant in _variants(name):
        rendered = _render(template, variant, _values(first_name="there"))
        for part in rendered.values():
            assert part.count("there") == part.count("Hi there,"), part[:200]


@pytest.mark.parametrize("profile", HOSTILE_PROFILES, ids=lambda p: p.label)
def test_an_example_escapes_a_hostile_name(profile: Any) -> None:
    """Even unchecked, a name is data: markup is escaped, template syntax stays text."""
    first_name = profile.traits.get("firstName") or "there"
    rendered = _render(_example("back_in_stock"), "b", _values(first_name=first_name))
    assert str(escape(first_name)) in rendered["html"], "escaped, and never run as a template"
    assert first_name in rendered["subject"]
    assert "<script>" not in rendered["html"]
    html, text = finish_email(rendered["html"])
    assert "<script>" not in html
    _assert_tidy(text)


def test_the_hostile_profiles_cover_the_brief() -> None:
    labels = [p.label for p in HOSTILE_PROFILES]
    assert len(labels) == len(set(labels))
    first_names = {p.traits["firstName"] for p in HOSTILE_PROFILES}
    for expected in (
        "",
        "JOHN",
        "john",
        "Jean-Luc",
        "J. R.",
        "Lester Wunderman",
        "Test",
        "😀",
        "محمد",
        "דוד",
    ):
        assert expected in first_names
    assert "E\u0301lodie" in first_names, "decomposed, not NFC"
    assert any(len(name) == 300 for name in first_names)
    assert {
        "<script>alert(1)</script>",
        "{{ 7*7 }}",
        "{% for x in range(10**9) %}",
        "Bob\u202eevil",
    } <= first_names
    surnames = {p.traits["lastName"] for p in HOSTILE_PROFILES}
    assert {"mcdonald", "O'Brien", "van der Berg"} <= surnames
    assert any(p.traits["firstName"].isspace() for p in HOSTILE_PROFILES)
    for profile in HOSTILE_PROFILES:
        assert {"firstName", "lastName", "name", "email"} <= set(profile.traits)
        assert profile.traits.get("size") == (None if profile.traits["firstName"] == "" else "M")


# ---- finish_email and text_from_html on anything ---------------------------------------------------

ODD_HTML = {
    "empty": "",
    "spaces": " \n\t ",
    "only text": "just some words",
    "broken tags": "<p><b>bold</i></td></table><a href=>link<div <span>",
    "unclosed comment": "<p>before</p><!-- never closed <p>after",
    "doctype only": "<!DOCTYPE html>",
    "xml declaration": '<?xml version="1.0" encoding="utf-8"?><p>declared</p>',
    "lone angle brackets": "<" * 5_000 + "words" + ">" * 5_000,
    "unclosed scripts": "<script>" * 2_000 + "hidden",
    "right to left": "<p dir='rtl'>مرحبا محمد، שלום דוד</p>",
    "emoji": "<p>😀👩🏽‍💻🇬🇧</p>",
    "combining": "<p>E\u0301lodie Z\u0351\u0352\u0353algo</p>",
    "bidi override": "<p>Bob\u202eevil\u202c and \u2067isolate\u2069</p>",
    "lone surrogate": "<p>a\ud800b</p>",
    "control characters": "<p>a\x00b\x01c\x1bd\x7f</p>",
    "entities": "<p>&amp; &bogus; &#xffffff; &#0; &#x110000;</p>",
}


def _assert_tidy(text: str) -> None:
    assert "\n\n\n" not in text
    assert all(line == line.rstrip() for line in text.split("\n"))
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]", text)


@pytest.mark.parametrize("html", ODD_HTML.values(), ids=ODD_HTML.keys())
def test_finish_email_takes_any_html(html: str) -> None:
    inlined, text = finish_email(html)
    assert isinstance(inlined, str) and isinstance(text, str)
    _assert_tidy(text)
    assert text_from_html(html) == text
    inlined.encode("utf-8")  # no lone surrogate survives into what is sent
    text.encode("utf-8")


def test_text_keeps_the_words_of_odd_html() -> None:
    assert text_from_html("just some words") == "just some words\n"
    assert text_from_html("<?xml version='1.0' encoding='utf-8'?><p>declared</p>") == "declared\n"
    assert text_from_html("<p>a\ud800b</p>") == "a\ufffdb\n"
    assert "مرحبا محمد" in text_from_html(ODD_HTML["right to left"])
    assert "hidden" not in text_from_html(ODD_HTML["unclosed scripts"])
    assert text_from_html("") == "" and text_from_html("<!-- only a comment -->") == ""


def test_text_reads_links_and_leaves_out_images_and_hidden_blocks() -> None:
    html = (
        '<span style="display:none">the preheader</span>'
        '<table><tr><td><a href="https://shop.example/i/1">'
        '<img src="https://img.example/1.jpg" alt="x"></a></td>'
        '<td><p>Title</p><p><a href="https://shop.example/i/1">See it</a></p></td></tr></table>'
        "<p>one</p>\n\n\n\n<p>two   </p>"
    )
    assert text_from_html(html) == "Title\n\n[See it](https://shop.example/i/1)\n\none\n\ntwo\n"


# A regression guard: css_inline recursed once per level and overflowed the stack on 3,000 nested
# tables, which kills the process (no exception to catch); libxml2 silently dropped everything past a
# depth of 256. Run in a child process, so that a crash fails this test instead of ending the run.
DEEP_CASES = """
from shopkeeper.content.email import finish_email
cases = {
    "divs": "<div>" * 10_000 + "deepest words",
    "closed divs": "<div>" * 10_000 + "deepest words" + "</div>" * 10_000,
    "tables": "<table><tr><td>" * 3_000 + "deepest words",
    "bold": "<b>" * 10_000 + "deepest words",
    "mismatched ends": "<div></span>" * 5_000 + "deepest words",
}
for name, html in cases.items():
    inlined, text = finish_email(html)
    assert "deepest words" in text, (name, text[-80:])
    assert "deepest words" in inlined, name
print("survived")
"""


def test_finish_email_survives_10000_levels_of_nesting() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEEP_CASES)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "survived"


def test_no_stylesheet_is_ever_loaded(tmp_path: Path) -> None:
    """css_inline reads a local file named by a <link> unless told not to load stylesheets."""
    sheet = tmp_path / "leak.css"
    sheet.write_text("p { color: #c0ffee; }")
    html = (
        f'<link rel="stylesheet" href="{sheet}"><link rel="stylesheet" href="file://{sheet}">'
        '<link rel="stylesheet" href="https://stylesheets.example/remote.css"><p>words</p>'
    )
    inlined, text = finish_email(html)
    assert "c0ffee" not in inlined and "<link" not in inlined
    assert text == "words\n"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                ["<p>", "</p>", "<td>", "<table>", "<a href='https://x.example'>", "</a>", "<", ">"]
            ),
            st.sampled_from(
                ["<style>p{color:red}@media (max-width:1px){p{color:blue}}</style>", "<br>", "&amp;"]
            ),
        ),
        max_size=40,
    )
)
def test_finish_email_never_raises(pieces: list[str]) -> None:
    inlined, text = finish_email("".join(pieces))
    _assert_tidy(text)
    inlined.encode("utf-8")
