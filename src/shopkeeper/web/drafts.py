"""A template as the editor's form holds it, and back: the same JSON `PUT /v1/templates/{name}` takes.

The form has one text box per part, one row per merge field (`field-N-name`, `-slot`, `-from`,
`-fallback`, `-weakest`, `-remove`) and the variants as JSON. A browser sends a text area's line ends as
CRLF; they are read as LF, so that saving an unchanged template makes no new version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lxml.etree
import lxml.html
import orjson

from shopkeeper.content.template import SLOTS, SOURCES
from shopkeeper.errors import InvalidInput
from shopkeeper.web.core import Form

CHANNELS = ("email", "web", "staff")
BLANK_ROWS = 2  # empty field rows the editor offers, to add fields without JavaScript
MAX_FIELDS = 100
STARTER: dict[str, Any] = {
    "channel": "email",
    "subject": "Hi {{ first_name }}, something for you",
    "preheader": "A short line that shows after the subject in the inbox.",
    "html": (
        "<p>Hi {{ first_name }},</p>\n<p>Write your message here.</p>\n"
        '<p><a href="{{ preferences_url }}">Choose what we send you, or unsubscribe</a></p>\n'
    ),
    "text": None,
    "fields": {
        "first_name": {
            "slot": "first_name",
            "from": "firstName",
            "fallback": "there",
            "weakest_source": "observed",
        },
        "preferences_url": {
            "slot": "url",
            "from": "preferences_url",
            "fallback": "abort",
            "weakest_source": "observed",
        },
    },
}


def _text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def draft_of(form: Form) -> dict[str, Any]:
    """The template JSON the editor's form describes. InvalidInput names a field row or the variants
    when they cannot be read; everything else is left to the template's own checks and lint."""
    draft: dict[str, Any] = {
        "channel": form.get("channel"),
        "subject": _text(form.get("subject")),
    }
    if form.get("preheader").strip():
        draft["preheader"] = _text(form.get("preheader"))
    draft["html"] = _text(form.get("html"))
    draft["text"] = _text(form.get("text")) if form.get("text").strip() else None
    draft["fields"] = _fields(form)
    variants = form.get("variants").strip()
    if variants:
        try:
            parsed = orjson.loads(variants)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"variants: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", field="variants"
            ) from None
        if parsed:
            draft["variants"] = parsed
    return draft


def _fields(form: Form) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for i in range(MAX_FIELDS + BLANK_ROWS):
        name = form.get(f"field-{i}-name").strip()
        if not name or form.get(f"field-{i}-remove"):
            continue
        if name in fields:
            raise InvalidInput(f"the field {name!r} is declared twice", field=f"fields.{name}")
        spec: dict[str, Any] = {
            "slot": form.get(f"field-{i}-slot"),
            "from": form.get(f"field-{i}-from").strip() or name,
        }
        if form.get(f"field-{i}-fallback"):
            spec["fallback"] = form.get(f"field-{i}-fallback")
        spec["weakest_source"] = form.get(f"field-{i}-weakest") or "observed"
        fields[name] = spec
    if len(fields) > MAX_FIELDS:
        raise InvalidInput(f"a template has at most {MAX_FIELDS} fields", field="fields")
    return fields


def editor_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the editor's boxes show for a template's JSON (saved, or a draft sent back)."""
    raw_fields = body.get("fields")
    fields = raw_fields if isinstance(raw_fields, Mapping) else {}
    rows = [
        {
            "name": name,
            "slot": spec.get("slot", "text"),
            "from": spec.get("from", name),
            "fallback": spec.get("fallback", ""),
            "weakest": spec.get("weakest_source", "observed"),
        }
        for name, spec in fields.items()
        if isinstance(spec, Mapping)
    ]
    rows += [{"name": "", "slot": "text", "from": "", "fallback": "", "weakest": "observed"}] * BLANK_ROWS
    variants = body.get("variants")
    return {
        "channel": body.get("channel") or "email",
        "subject": body.get("subject") or "",
        "preheader": body.get("preheader") or "",
        "html": body.get("html") or "",
        "text": body.get("text") or "",
        "fields": rows,
        "variants": orjson.dumps(variants, option=orjson.OPT_INDENT_2).decode() if variants else "",
        "channels": CHANNELS,
        "slots": SLOTS,
        "sources": SOURCES,
    }


def form_values(form: Form) -> dict[str, Any]:
    """What the editor's boxes show again after a post, as typed (even when it cannot be read)."""
    rows = []
    for i in range(MAX_FIELDS + BLANK_ROWS):
        if form.get(f"field-{i}-name").strip() and not form.get(f"field-{i}-remove"):
            rows.append(
                {
                    "name": form.get(f"field-{i}-name").strip(),
                    "slot": form.get(f"field-{i}-slot"),
                    "from": form.get(f"field-{i}-from"),
                    "fallback": form.get(f"field-{i}-fallback"),
                    "weakest": form.get(f"field-{i}-weakest"),
                }
            )
    body = {
        "channel": form.get("channel"),
        "subject": _text(form.get("subject")),
        "preheader": _text(form.get("preheader")),
        "html": _text(form.get("html")),
        "text": _text(form.get("text")),
    }
    values = editor_values(body)
    values["fields"] = rows + values["fields"]
    values["variants"] = _text(form.get("variants"))
    return values


def frame_copy(html: str) -> str:
    """An email's HTML as the preview frame shows it: without its styles, scripts, event handlers and
    remote images (an image shows its alt text). The frame is sandboxed and under the dashboard's CSP,
    which refuse them all anyway; leaving them out spares the browser a refusal for every one."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return ""
    for element in root.xpath("//style|//script|//link|//object|//embed|//iframe|//base|//meta[@http-equiv]"):
        element.drop_tree()
    for element in root.iter():
        for attribute in list(element.attrib):
            value = element.attrib[attribute].strip().lower()
            if attribute == "style" or attribute.startswith("on") or value.startswith("javascript:"):
                del element.attrib[attribute]
    for image in root.xpath("//img"):
        source = image.get("src", "")
        if not source.startswith("data:"):
            image.attrib.pop("src", None)
            image.attrib.pop("srcset", None)
    framed: str = lxml.html.tostring(root, encoding="unicode", doctype="<!DOCTYPE html>")
    return framed
