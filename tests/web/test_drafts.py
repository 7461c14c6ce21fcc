"""The template editor's form and back, and the copy of an email its preview frame shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.web.core import Form
from shopkeeper.web.drafts import draft_of, editor_values, frame_copy

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "shopkeeper" / "content" / "examples"


def _form(values: dict[str, str]) -> Form:
    return Form(values, {k: [v] for k, v in values.items()})


def _posted(body: dict[str, object]) -> dict[str, str]:
    """What a browser posts for the editor showing `body` (line ends as CRLF)."""
    shown = editor_values(body)
    values = {
        k: str(shown[k]).replace("\n", "\r\n") for k in ("channel", "subject", "preheader", "html", "text")
    }
    values["variants"] = shown["variants"]
    for i, row in enumerate(shown["fields"]):
        values |= {
            f"field-{i}-name": row["name"],
            f"field-{i}-slot": row["slot"],
            f"field-{i}-from": row["from"],
            f"field-{i}-fallback": row["fallback"],
            f"field-{i}-weakest": row["weakest"],
        }
    return values


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_a_template_comes_back_from_the_form_unchanged(example: str) -> None:
    """So that saving it untouched makes no new version."""
    body = json.loads((EXAMPLES / example).read_text())
    assert draft_of(_form(_posted(body))) == body


def test_fields_are_added_removed_and_read_with_their_defaults() -> None:
    values = _posted({"channel": "web", "html": "<p>{{ a }}</p>", "fields": {"a": {"slot": "text"}}})
    values |= {"field-0-remove": "1", "field-1-name": " size ", "field-1-slot": "size", "field-1-from": ""}
    draft = draft_of(_form(values))
    assert draft["fields"] == {"size": {"slot": "size", "from": "size", "weakest_source": "observed"}}
    assert draft["text"] is None and "preheader" not in draft and "variants" not in draft


def test_what_cannot_be_read_names_its_place() -> None:
    twice = _posted({"channel": "web", "html": "x", "fields": {"a": {"slot": "text"}}})
    twice |= {"field-1-name": "a", "field-1-slot": "text"}
    with pytest.raises(InvalidInput, match="declared twice"):
        draft_of(_form(twice))
    with pytest.raises(InvalidInput, match=r"variants: not JSON \(.* line 1, column 2\)"):
        draft_of(_form({"channel": "web", "html": "x", "variants": "{b"}))


def test_the_frame_s_copy_runs_and_loads_nothing() -> None:
    html = (
        '<html><head><style>p{color:red}</style><link rel="stylesheet" href="https://x.example/a.css">'
        '<meta http-equiv="refresh" content="0;url=https://x.example"></head><body>'
        '<p style="color: red" onclick="x()">Hi there</p><script>alert(1)</script>'
        '<img src="https://x.example/p.gif" alt="a pixel">'
        '<img src="data:image/gif;base64,R0lGOD" alt="inline">'
        '<iframe src="https://x.example"></iframe><a href=" JavaScript:x()">a link</a></body></html>'
    )
    framed = frame_copy(html)
    assert "Hi there" in framed and 'alt="a pixel"' in framed and "data:image/gif" in framed
    for gone in (
        "<style",
        "<link",
        "<script",
        "http-equiv",
        "style=",
        "x.example",
        "<iframe",
        "onclick",
        "x()",
    ):
        assert gone not in framed
    assert frame_copy("") == "" and frame_copy("   ") == ""
