"""Render a template for one person, guarded: every value checked for its slot, the sandbox bounded.

Values are data, never template source: they reach Jinja2 as plain strings, checked and cleaned by
`shopkeeper.content.slots.check`, and the HTML part escapes them. A value that fails its slot (or comes
from a weaker source than the field accepts) gives way to the field's fallback; a field whose policy is
`abort` stops that person's message, with the reason. A raw tag, an empty slot or a None never reaches
output: the sandbox's `StrictUndefined` turns a missing name into an abort, not into blank text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateError
from jinja2 import Template as Compiled
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shopkeeper.content.email import text_from_html, tidy_text
from shopkeeper.content.slots import Checked, check
from shopkeeper.content.template import SAFE_FILTERS, SAFE_TESTS, Field, Template

_BLOCK_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)
_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
MAX_OUTPUT_CHARACTERS = 500_000  # one part, rendered
MAX_SEQUENCE = 10_000  # the longest string or list an operator may make (`"x" * n`, `[..] * n`)


class Value(NamedTuple):
    """A value offered for a field, and where it came from (`stated`, `observed` or `inferred`)."""

    value: Any
    source: str
    refused: str | None = None  # why it may not be used here (no consent, a sensitive guess)


@dataclass(frozen=True, slots=True)
class FieldUse:
    """What a field rendered: its text, where it came from, and whether its fallback was used (why)."""

    name: str
    value: Any  # a str; for the item and items slots, the checked item(s)
    source: str | None
    fallback_used: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "source": self.source,
            "fallback_used": self.fallback_used,
        }


@dataclass(frozen=True, slots=True)
class Rendered:
    """One person's message, or `aborted` with the reason it was not produced."""

    subject: str | None
    preheader: str | None
    html: str | None
    text: str | None
    fields: list[FieldUse]
    aborted: str | None = None


class _OutputTooLong(Exception):
    pass


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with nothing global (no range, cycler, joiner, namespace, lipsum,
    dict), only the shaping filters and tests, and operators that cannot build huge values."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True)
        self.globals.clear()
        self.filters = {name: f for name, f in self.filters.items() if name in SAFE_FILTERS}
        self.tests = {name: t for name, t in self.tests.items() if name in SAFE_TESTS}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("powers are not allowed in a template")
        if operator == "*":  # refused before it is built: `"x" * 10**9` would take a gigabyte first
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_SEQUENCE
                ):
                    raise SecurityError(f"a value longer than {MAX_SEQUENCE:,} is not allowed in a template")
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, str | list | tuple) and len(result) > MAX_SEQUENCE:
            raise SecurityError(f"a value longer than {MAX_SEQUENCE:,} is not allowed in a template")
        return result

    def is_safe_callable(self, obj: Any) -> bool:
        return False  # templates call nothing: fields give values, filters shape them


_HTML = _Sandbox(html=True)
_TEXT = _Sandbox(html=False)


def render(
    template: Template,
    values: Mapping[str, Value],
    *,
    provided: Mapping[str, Any] | None = None,
    variant: str | None = None,
    locale: str = "en",
    currency: str | None = None,
    now: datetime | None = None,
) -> Rendered:
    """`template` for one person whose values are `values` (by trait key, each with its source).
    `provided`: the caller's `item`, `items` and `moment` (checked here as the `item` and `items` slots;
    the moment's own values may also feed declared fields, as observed). The parts are rendered as
    written: `finish` makes an email of them (CSS inlined, the text part)."""
    uses: list[FieldUse] = []
    given = dict(provided or {})
    context: dict[str, Any] = {}
    raw_moment = given.get("moment")
    moment: Mapping[str, Any] = raw_moment if isinstance(raw_moment, Mapping) else {}
    for name, spec in template.fields.items():
        offered = values.get(spec.source_key)
        if offered is None and spec.source_key in moment:
            offered = Value(moment[spec.source_key], "observed")
        if offered is None and spec.source_key in given:
            offered = Value(given[spec.source_key], "observed")
        use = _field_use(name, spec, offered, locale, currency, now)
        uses.append(use)
        if use.value is None:  # abort
            return Rendered(None, None, None, None, uses, aborted=f"{name}: {use.reason}")
        context[name] = use.value
    for name in sorted(template.provided_names()):
        checked = _provided(name, given.get(name), locale, now)
        if checked.value is None:
            return Rendered(None, None, None, None, uses, aborted=f"{name}: {checked.reason}")
        context[name] = checked.value
    out: dict[str, str | None] = {}
    parts = template.parts(variant)
    made_text = parts["text"] is None and parts["html"] is not None
    if made_text:
        parts["text"] = text_template(parts["html"] or "")
    try:
        for part, source in parts.items():
            out[part] = None if source is None else _bounded(_compiled(part == "html", source), context)
    except (TemplateError, _OutputTooLong, TypeError) as exc:  # TypeError: an import with no loader
        return Rendered(None, None, None, None, uses, aborted=f"the template could not render: {_short(exc)}")
    text = out["text"]
    if made_text and text is not None:
        text = tidy_text(text)
    return Rendered(_one_line(out["subject"]), _one_line(out["preheader"]), out["html"], text, uses)


@lru_cache(maxsize=256)
def text_template(html: str) -> str | None:
    """The text part's template, made once from the HTML part's template with inscriptis (as the text of
    each rendered email would be, and much cheaper than that): the HTML's words with its `{{ }}` and
    `{% %}` tags in place, rendered without escaping. None when a tag did not come through intact (every
    block tag, in order; no expression altered) or the result does not parse: each message's text is
    then made from its own HTML."""
    derived = text_from_html(html)
    blocks = [" ".join(b.split()) for b in _BLOCK_TAG.findall(html)]
    if [" ".join(b.split()) for b in _BLOCK_TAG.findall(derived)] != blocks:
        return None
    expressions = {" ".join(e.split()) for e in _EXPRESSION.findall(html)}
    if any(" ".join(e.split()) not in expressions for e in _EXPRESSION.findall(derived)):
        return None
    try:
        _compiled(False, derived)
    except TemplateError:
        return None
    return derived


def _field_use(
    name: str, spec: Field, offered: Value | None, locale: str, currency: str | None, now: datetime | None
) -> FieldUse:
    if offered is None or offered.value is None:
        reason = "no value"
    elif offered.refused is not None:
        reason = offered.refused
    else:
        checked = check(
            spec.slot,
            offered.value,
            source=offered.source,
            weakest_source=spec.weakest_source,
            locale=locale,
            currency=currency,
            now=now,
        )
        if checked.value is not None:
            return FieldUse(name, checked.value, offered.source, False)
        reason = checked.reason or "not fit for its slot"
    return FieldUse(name, spec.fallback, None, True, reason)


def _provided(name: str, value: Any, locale: str, now: datetime | None) -> Checked:
    """The caller's `item`, `items` or `moment`, checked before any template sees it."""
    if value is None:
        return Checked(None, f"the template uses {name}, and none was given")
    if name == "moment":
        if not isinstance(value, Mapping):
            return Checked(None, "moment must be an object")
        kept = {}
        for key, raw in value.items():
            if isinstance(key, str) and isinstance(raw, str | int | float) and not isinstance(raw, bool):
                text = check("text", raw, source="observed", locale=locale, now=now)
                if text.value is not None:
                    kept[key] = text.value
        return Checked(kept, None)
    return check(name, value, source="observed", locale=locale, now=now)


def _one_line(text: str | None) -> str | None:
    """A subject or preheader on one line, trimmed: a header never carries a newline."""
    return None if text is None else " ".join(text.split())


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


@lru_cache(maxsize=256)
def _compiled(html: bool, source: str) -> Compiled:
    """A part compiled once, however many people it is rendered for."""
    return (_HTML if html else _TEXT).from_string(source)


def _bounded(compiled: Compiled, context: Mapping[str, Any]) -> str:
    """The rendered part, stopped once it passes `MAX_OUTPUT_CHARACTERS`."""
    chunks: list[str] = []
    size = 0
    for chunk in compiled.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARACTERS:
            raise _OutputTooLong(f"the output passed {MAX_OUTPUT_CHARACTERS:,} characters")
        chunks.append(chunk)
    return "".join(chunks)
