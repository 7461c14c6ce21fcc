"""A template as a shop writes it (issue 14's outside contract), checked, and its lint.

A template has a channel, a subject, a preheader, an HTML part, an optional text part, the merge fields it
declares (each with its slot, the trait it comes `from`, a fallback or `abort`, and the weakest source it
accepts) and optional creative variants, which override parts. Lint reads the template's source, never
runs it: each finding has the line and column it points at, a code, and a message that says the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, get_args

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shopkeeper.content.sensitive import Sensitive
from shopkeeper.errors import InvalidInput

Channel = Literal["email", "web", "staff"]
Slot = Literal[
    "first_name", "full_name", "salutation", "text", "number", "money", "date", "size", "item", "items", "url"
]
Source = Literal["inferred", "observed", "stated"]
SLOTS: tuple[str, ...] = get_args(Slot)
SOURCES: tuple[str, ...] = get_args(Source)  # weakest first
PARTS = ("subject", "preheader", "html", "text")
ABORT = "abort"
MAX_SUBJECT = 78
MAX_PART_CHARACTERS = 200_000
# What the caller provides beside the declared fields: the moment's item, decide's items, the moment.
PROVIDED = frozenset({"item", "items", "moment"})
GREETING_SLOTS = frozenset({"first_name", "full_name", "salutation"})
NAME_SLOTS = frozenset({"first_name", "full_name"})


@dataclass(frozen=True, slots=True)
class Field:
    """One declared merge field. `fallback` None: the person's message is not produced (`abort`)."""

    slot: str
    source_key: str  # the trait it comes from (the JSON's `from`)
    fallback: str | None
    weakest_source: str = "observed"


@dataclass(frozen=True, slots=True)
class Template:
    channel: str
    subject: str
    preheader: str
    html: str
    text: str | None
    fields: Mapping[str, Field]
    variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def parts(self, variant: str | None = None) -> dict[str, str | None]:
        """Subject, preheader, HTML and text, with a variant's overrides."""
        chosen: dict[str, str | None] = {
            "subject": self.subject,
            "preheader": self.preheader,
            "html": self.html,
            "text": self.text,
        }
        if variant is not None:
            if variant not in self.variants:
                raise InvalidInput(f"the template has no variant {variant!r}", field="variant")
            chosen.update(self.variants[variant])
        return chosen

    def sources(self) -> list[tuple[str, str]]:
        """Every part's source, labelled (`subject`, `variants.b.subject`, ...); a missing text part is
        left out. A variant lists only the parts it overrides."""
        found = [(part, source) for part, source in self.parts().items() if source is not None]
        for name, overrides in self.variants.items():
            found += [(f"variants.{name}.{part}", source) for part, source in overrides.items()]
        return found

    def provided_names(self) -> frozenset[str]:
        """Which of the caller's `item`, `items` and `moment` the template reads."""
        return _provided_in(tuple(source for _, source in self.sources()))


@lru_cache(maxsize=256)
def _provided_in(sources: tuple[str, ...]) -> frozenset[str]:
    found: set[str] = set()
    for source in sources:
        try:
            tree = _PARSER.parse(source)
        except TemplateSyntaxError:
            continue  # lint says so; rendering it aborts
        found |= {name for _, name in _names(tree) if name in PROVIDED}
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding: where (1-based line and column in `part`), a code, and what to do."""

    part: str
    line: int
    column: int
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


def parse_template(raw: Any) -> Template:
    """The template a JSON body (or a file) describes; `InvalidInput` naming the field that is wrong."""
    if not isinstance(raw, dict):
        raise InvalidInput("a template is a JSON object", field="body")
    unknown = sorted(set(raw) - {"channel", *PARTS, "fields", "variants"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r} in the template", field=unknown[0])
    channel = raw.get("channel")
    if channel not in get_args(Channel):
        raise InvalidInput("channel must be one of email, web, staff", field="channel")
    parts = {part: _part(raw, part) for part in PARTS}
    if parts["html"] is None:
        raise InvalidInput("html is required (the text part can be made from it)", field="html")
    fields = raw.get("fields", {})
    if not isinstance(fields, dict):
        raise InvalidInput("fields must be an object of name -> field", field="fields")
    variants = raw.get("variants", {}) or {}
    if not isinstance(variants, dict):
        raise InvalidInput("variants must be an object of name -> parts", field="variants")
    return Template(
        channel=str(channel),
        subject=parts["subject"] or "",
        preheader=parts["preheader"] or "",
        html=parts["html"],
        text=parts["text"],
        fields={name: _field(name, spec) for name, spec in fields.items()},
        variants={name: _variant(name, spec) for name, spec in variants.items()},
    )


def _part(raw: Mapping[str, Any], part: str) -> str | None:
    value = raw.get(part)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{part} must be a string", field=part)
    if len(value) > MAX_PART_CHARACTERS:
        raise InvalidInput(f"{part} is longer than {MAX_PART_CHARACTERS:,} characters", field=part)
    return value


def _field(name: str, spec: Any) -> Field:
    where = f"fields.{name}"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) or name in PROVIDED:
        raise InvalidInput(
            f"field name {name!r}: lower-case letters, digits and _, not item, items or moment", field=where
        )
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    unknown = sorted(set(spec) - {"slot", "from", "fallback", "weakest_source"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r} in {where}", field=f"{where}.{unknown[0]}")
    slot = spec.get("slot")
    if slot not in SLOTS:
        raise InvalidInput(f"{where}.slot must be one of {', '.join(SLOTS)}", field=f"{where}.slot")
    source_key = spec.get("from", name)
    if not isinstance(source_key, str) or not source_key:
        raise InvalidInput(f"{where}.from must name a trait", field=f"{where}.from")
    fallback = spec.get("fallback")
    if fallback is not None and not isinstance(fallback, str):
        raise InvalidInput(f'{where}.fallback must be a string, or "abort"', field=f"{where}.fallback")
    weakest = spec.get("weakest_source", "observed")
    if weakest not in SOURCES:
        raise InvalidInput(
            f"{where}.weakest_source must be one of {', '.join(SOURCES)}", field=f"{where}.weakest_source"
        )
    # A missing fallback is kept as "" here so that lint can name it; `abort` is said explicitly.
    return Field(slot, source_key, None if fallback == ABORT else (fallback or ""), weakest)


def _variant(name: str, spec: Any) -> dict[str, str]:
    where = f"variants.{name}"
    if not isinstance(spec, dict) or not spec:
        raise InvalidInput(f"{where} must be an object of parts it overrides", field=where)
    unknown = sorted(set(spec) - set(PARTS))
    if unknown:
        raise InvalidInput(f"{where} may override {', '.join(PARTS)}, not {unknown[0]!r}", field=where)
    return {part: value for part in spec if (value := _part(spec, part)) is not None}


# ---- lint -----------------------------------------------------------------------------------------

_PARSER = ImmutableSandboxedEnvironment()
_HTTP_LINK = re.compile(r"""(?:href|src)\s*=\s*["']?\s*http://""", re.IGNORECASE)
# CSS that fetches from elsewhere when the email is opened: css-inline keeps it as written
_REMOTE_CSS = re.compile(r"@import\b|@font-face\b|<link\b[^>]*\bstylesheet\b", re.IGNORECASE)


def lint(template: Template, *, sensitive: Sensitive | None = None) -> list[Finding]:
    """Every finding in the template and its variants: the fields first, then part by part."""
    sensitive = sensitive or Sensitive()
    findings: list[Finding] = []
    for name, spec in template.fields.items():
        word = sensitive.match(name, spec.source_key)
        if word is not None:
            findings.append(
                Finding(
                    "fields",
                    1,
                    1,
                    "sensitive_field",
                    f"field {name!r} reads {spec.source_key!r}, a sensitive category ({word}): copy never "
                    "mentions it; remove the field (SHOPKEEPER_SENSITIVE_CATEGORIES lists the words)",
                )
            )
        if spec.fallback == "":
            findings.append(
                Finding(
                    "fields",
                    1,
                    1,
                    "no_fallback",
                    f'field {name!r} has no fallback: give one ("there") or "abort"',
                )
            )
        if spec.slot in GREETING_SLOTS and spec.weakest_source == "inferred":
            findings.append(
                Finding(
                    "fields",
                    1,
                    1,
                    "inferred_greeting",
                    f"field {name!r} greets with a guess: its weakest_source must be observed or stated",
                )
            )
        if spec.slot == "first_name" and spec.source_key in ("name", "fullName", "full_name"):
            findings.append(
                Finding(
                    "fields",
                    1,
                    1,
                    "full_name_in_first_name",
                    f"field {name!r} fills a first-name slot from {spec.source_key!r}, a full name: "
                    "take firstName",
                )
            )
    for part, source in template.sources():
        findings += _lint_part(part, source, template)
    if template.text is None and not _has_text(template.html):
        findings.append(
            Finding(
                "text",
                1,
                1,
                "missing_text",
                "there is no text part, and the HTML has no words to make one from: write a text part",
            )
        )
    return findings


def _has_text(html: str) -> bool:
    """Whether the HTML has words outside its tags, comments, styles and template blocks."""
    stripped = re.sub(r"(?is)<(style|script|head)\b.*?</\1>|<!--.*?-->|<[^>]*>|\{%.*?%\}|&nbsp;", " ", html)
    return bool(stripped.strip())


def _lint_part(part: str, source: str, template: Template) -> list[Finding]:
    found: list[Finding] = []
    if part.endswith("subject"):
        if not source.strip():
            found.append(Finding(part, 1, 1, "empty_subject", "the subject is empty: write one"))
        elif len(source) > MAX_SUBJECT:
            found.append(
                Finding(
                    part,
                    1,
                    MAX_SUBJECT + 1,
                    "long_subject",
                    f"the subject has {len(source)} characters; keep it to {MAX_SUBJECT}",
                )
            )
    for match in _HTTP_LINK.finditer(source):
        line, column = _position(source, match.start())
        found.append(Finding(part, line, column, "http_link", "a link without https: use https://"))
    for match in _REMOTE_CSS.finditer(source):
        line, column = _position(source, match.start())
        found.append(
            Finding(
                part,
                line,
                column,
                "remote_css",
                "CSS that loads from elsewhere (@import, @font-face, a stylesheet link) tells the sender "
                "when the email is opened and breaks in many clients: put the styles in the template",
            )
        )
    try:
        tree = _PARSER.parse(source)
    except TemplateSyntaxError as exc:
        found.append(
            Finding(
                part, exc.lineno or 1, 1, "syntax", f"{exc.message}: close every {{% %}} block and {{{{ }}}}"
            )
        )
        return found
    known = set(template.fields) | PROVIDED
    for read, name in _names(tree):
        if name not in known:
            found.append(
                Finding(
                    part,
                    read.lineno,
                    _column(source, read.lineno, name),
                    "unknown_field",
                    f"{name!r} is not a declared field: declare it under fields, or remove it",
                )
            )
    for node, message in _forbidden(tree):
        found.append(
            Finding(part, node.lineno, _column(source, node.lineno, _marker(node)), "forbidden", message)
        )
    return found


def _names(tree: nodes.Template) -> Iterator[tuple[nodes.Name, str]]:
    """The variables a template reads, less those its own loops and sets bind."""
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    if any(True for _ in tree.find_all(nodes.For)):
        bound.add("loop")  # Jinja2's own, inside a for loop: loop.index, loop.first, ...
    for node in tree.find_all(nodes.Name):
        assert isinstance(node, nodes.Name)
        if node.ctx == "load" and node.name not in bound:
            yield node, node.name


def _forbidden(tree: nodes.Template) -> Iterator[tuple[nodes.Node, str]]:
    """What the sandbox would refuse at run time, found before: private attributes, `attr`, imports,
    calls other than a short allowlist, and macros."""
    for found in tree.find_all((nodes.Getattr, nodes.Getitem)):
        node: nodes.Node = found
        name = node.attr if isinstance(node, nodes.Getattr) else _constant(getattr(node, "arg", None))
        if isinstance(name, str) and name.startswith("_"):
            yield node, f"{name!r}: a private attribute is never allowed in a template"
    for node in tree.find_all(nodes.Filter):
        if node.name not in SAFE_FILTERS:
            yield (
                node,
                f"the filter {node.name!r} is not allowed; use one of {', '.join(sorted(SAFE_FILTERS))}",
            )
    for node in tree.find_all(nodes.Test):
        if node.name not in SAFE_TESTS:
            yield node, f"the test {node.name!r} is not allowed"
    for node in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
        yield node, "a template imports, includes and extends nothing"
    for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
        yield node, "macros are not allowed: write the part out"
    for node in tree.find_all((nodes.Mul, nodes.Pow)):
        yield node, "repeating or raising values is not allowed: compute the value in the field"
    for node in tree.find_all(nodes.Call):
        yield node, "calls are not allowed in a template: fields give values, filters shape them"


def _column(source: str, line: int, word: str | None) -> int:
    """The 1-based column of `word` on `line` (Jinja2 keeps only lines): where a tag reads it, or 1."""
    lines = source.splitlines()
    if not word or not 0 < line <= len(lines):
        return 1
    text = lines[line - 1]
    for tag in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", text):
        found = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", tag.group())
        if found:
            return tag.start() + found.start() + 1
    at = text.find(word)
    return at + 1 if at >= 0 else 1


def _marker(node: nodes.Node) -> str | None:
    """What to look for on the line of a forbidden construct."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Filter | nodes.Test):
        return node.name
    keywords = {
        nodes.Import: "import",
        nodes.FromImport: "from",
        nodes.Include: "include",
        nodes.Extends: "extends",
        nodes.Macro: "macro",
        nodes.CallBlock: "call",
        nodes.Mul: "*",
        nodes.Pow: "**",
        nodes.Call: "(",
    }
    return keywords.get(type(node))


def _constant(node: object) -> object:
    return node.value if isinstance(node, nodes.Const) else None


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


# Filters that shape a value and cannot reach Python: no attr, map(attribute=...), format, ...
SAFE_FILTERS = frozenset(
    {
        "default",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "truncate",
        "length",
        "first",
        "last",
        "join",
        "escape",
        "e",
        "striptags",
        "wordcount",
        "round",
        "int",
        "float",
        "abs",
        "replace",
    }
)
SAFE_TESTS = frozenset({"defined", "undefined", "none", "number", "string", "even", "odd", "eq", "ne"})
