"""The audience builder's form, to and from the condition language (`shopkeeper.personas.conditions`).

The builder edits a condition two ways. **Rows**: up to `MAX_ROWS` leaves, each maybe negated, joined by
`all` or `any`; every row carries the fields of every leaf kind (`r3-event-at_least`), and only its chosen
kind's are read (the page's CSS shows only those, so the form needs no script). **JSON**: the whole
language, nesting included, in a text area. The `editor` field says which one counts.

Rows hold text as typed. Turning them into a condition only converts what is plainly a number or
true/false and leaves everything else as text, so that the language's own parser judges every value and
its error names the spot (`where.all[1].at_least`), which the builder says as "condition 2 (event)".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.conditions import GROUPS, kind_of, parse_condition

MAX_ROWS = 12  # a form of this many rows stays well under the dashboard's 500 fields; JSON for more
LEAF_KINDS = ("trait", "event", "purchased", "persona", "consent", "wish", "moment")
# Each kind's fields in a row (the form's names are r{i}-{kind}-{field}).
FIELDS: dict[str, tuple[str, ...]] = {
    "trait": ("key", "test", "value", "to", "source"),
    "event": ("name", "at_least", "at_most", "within_days"),
    "purchased": ("category", "item", "at_least", "within_days", "spend_gte", "spend_lte"),
    "persona": ("id",),
    "consent": ("purpose", "granted"),
    "wish": ("item", "status"),
    "moment": ("rule", "status", "within_days"),
}
TRAIT_TESTS = ("equals", "contains", "gte", "lte", "between")
JOINS = ("all", "any")
EDITORS = ("rows", "json")
_WHOLE = re.compile(r"[+-]?\d{1,12}")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")
_ROW_PATH = re.compile(r"^where(?:\.(?:all|any)\[(\d+)\])?(?:\.not)?(?:\.|$)")


@dataclass
class Row:
    """One row of the builder: a leaf kind ("" for an empty row), whether it is negated, and the text of
    every kind's fields, by "kind-field"."""

    kind: str = ""
    negate: bool = False
    values: dict[str, str] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> str:
        return self.values.get(f"{kind}-{name}", "")


@dataclass
class Draft:
    """What the builder shows: the audience's name and description, and its condition as rows and JSON."""

    name: str = ""
    description: str = ""
    original: str = ""  # the saved audience being edited ("" for a new one)
    join: str = "all"
    editor: str = "rows"
    where_json: str = ""
    rows: list[Row] = field(default_factory=list)

    def with_blank_row(self, more: int = 0) -> Draft:
        """The rows as they are, with a blank one at the end (and `more` besides), for the page."""
        rows = list(self.rows)
        wanted = (0 if rows and rows[-1].kind == "" else 1) + more
        rows += [Row() for _ in range(wanted)]
        return replace(self, rows=rows[: max(MAX_ROWS, len(self.rows))])


def draft_from_form(values: Mapping[str, str]) -> Draft:
    """The builder's fields as posted (unknown names ignored, missing ones empty)."""
    rows = []
    for i in range(MAX_ROWS):
        prefix = f"r{i}-"
        if prefix + "kind" not in values:
            break
        kind = values.get(prefix + "kind", "")
        texts = {
            f"{k}-{name}": values.get(f"{prefix}{k}-{name}", "")[:300]
            for k, names in FIELDS.items()
            for name in names
        }
        rows.append(Row(kind if kind in LEAF_KINDS else "", bool(values.get(prefix + "not")), texts))
    return Draft(
        name=values.get("name", "").strip(),
        description=values.get("description", ""),
        original=values.get("original", ""),
        join=_one_of(values.get("join", ""), JOINS),
        editor=_one_of(values.get("editor", ""), EDITORS),
        where_json=values.get("where_json", ""),
        rows=rows,
    )


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    return value if value in choices else choices[0]


def condition_of(draft: Draft) -> dict[str, Any] | None:
    """The draft's condition, parsed and normalized; None when it has none yet. InvalidInput names the
    spot (and, for rows, the row), a row that is not filled in yet included."""
    condition, waiting = preview_of(draft)
    if waiting:
        i, what = waiting[0]
        raise InvalidInput(f"Condition {i + 1} ({draft.rows[i].kind}): {what}", field="where")
    return condition


def preview_of(draft: Draft) -> tuple[dict[str, Any] | None, list[tuple[int, str]]]:
    """What to measure while the user is still typing: the condition of the rows that are filled in, and
    the rows left out because a field they need is still empty, as (row index, what it needs). A value
    that is wrong, not missing, is an InvalidInput naming the spot."""
    if draft.editor == "json":
        text = draft.where_json.strip()
        if not text:
            return None, []
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"where: not valid JSON ({_short(exc)})", field="where") from None
        return parse_condition(raw, field="where"), []
    waiting = [(i, need) for i, row in enumerate(draft.rows) if row.kind and (need := missing(row))]
    left_out = {i for i, _ in waiting}
    filled = [(i, row) for i, row in enumerate(draft.rows) if row.kind and i not in left_out]
    if not filled:
        return None, waiting
    leaves = [{"not": leaf_of(row)} if row.negate else leaf_of(row) for _, row in filled]
    raw = leaves[0] if len(leaves) == 1 else {draft.join: leaves}
    try:
        return parse_condition(raw, field="where"), waiting
    except InvalidInput as exc:
        found = _ROW_PATH.match(exc.field or "")
        if not found:
            raise
        i, row = filled[int(found.group(1) or 0)]
        raise InvalidInput(f"Condition {i + 1} ({row.kind}): {exc.message}", field=exc.field) from None


def missing(row: Row) -> str:
    """What a row still needs before it is a condition ("" when nothing): its kind's required fields."""
    kind, get = row.kind, row.get
    if kind == "trait":
        if not get(kind, "key").strip():
            return "give the trait's name"
        if not get(kind, "value").strip():
            return "give the value to compare with"
        if get(kind, "test") == "between" and not get(kind, "to").strip():
            return "give the upper value"
    if kind == "event" and not get(kind, "name").strip():
        return "give the event's name"
    if kind == "persona" and not get(kind, "id"):
        return "pick a persona"
    if kind == "consent" and not get(kind, "purpose"):
        return "pick a purpose"
    return ""


def leaf_of(row: Row) -> dict[str, Any]:
    """A row as a leaf of the language, unchecked: `parse_condition` judges it."""
    kind, get = row.kind, row.get
    leaf: dict[str, Any]
    if kind == "trait":
        leaf = {"trait": get(kind, "key").strip()}
        test = get(kind, "test") if get(kind, "test") in TRAIT_TESTS else "equals"
        if test == "between":
            leaf["gte"], leaf["lte"] = _number(get(kind, "value")), _number(get(kind, "to"))
        elif test in ("gte", "lte"):
            leaf[test] = _number(get(kind, "value"))
        else:
            leaf[test] = _scalar(get(kind, "value"))
        if get(kind, "source"):
            leaf["source"] = get(kind, "source")
    elif kind == "event":
        leaf = {"event": get(kind, "name").strip()}
        _numbers(leaf, row, kind, ("at_least", "at_most", "within_days"))
    elif kind == "purchased":
        leaf = {"purchased": get(kind, "category").strip() or True}
        if get(kind, "item").strip():
            leaf["item"] = get(kind, "item").strip()
        _numbers(leaf, row, kind, ("at_least", "within_days", "spend_gte", "spend_lte"))
    elif kind == "persona":
        leaf = {"persona": get(kind, "id")}
    elif kind == "consent":
        leaf = {"consent": get(kind, "purpose"), "granted": get(kind, "granted") != "false"}
    elif kind == "wish":
        leaf = {"wish": get(kind, "item").strip() or True}
        if get(kind, "status"):
            leaf["status"] = get(kind, "status")
    else:
        leaf = {"moment": get(kind, "rule").strip() or True}
        if get(kind, "status"):
            leaf["status"] = get(kind, "status")
        _numbers(leaf, row, kind, ("within_days",))
    return leaf


def draft_from_condition(
    condition: dict[str, Any] | None, *, name: str = "", description: str = "", original: str = ""
) -> Draft:
    """A draft showing a parsed condition: as rows when rows can say it exactly, else as JSON."""
    text = "" if condition is None else json.dumps(condition, ensure_ascii=False, indent=2)
    draft = Draft(name=name, description=description, original=original, where_json=text)
    if condition is None:
        return draft
    as_rows = rows_of(condition)
    if as_rows is None:
        return replace(draft, editor="json")
    join, rows = as_rows
    return replace(draft, join=join, rows=rows)


def rows_of(condition: dict[str, Any]) -> tuple[str, list[Row]] | None:
    """A parsed condition as (join, rows), when rows say exactly the same; else None."""
    kind = kind_of(condition)
    parts = condition[kind] if kind in ("all", "any") else [condition]
    join = kind if kind in ("all", "any") else "all"
    if len(parts) > MAX_ROWS:
        return None
    rows = []
    for part in parts:
        negate = kind_of(part) == "not"
        leaf = part["not"] if negate else part
        if kind_of(leaf) in GROUPS:
            return None
        rows.append(Row(kind_of(leaf), negate, _texts(leaf)))
    try:  # rows hold text: a value whose type text cannot keep (a trait equal to the string "3") is JSON
        again = condition_of(Draft(join=join, rows=rows))
    except InvalidInput:
        return None
    return (join, rows) if again == condition else None


def _texts(leaf: dict[str, Any]) -> dict[str, str]:
    kind = kind_of(leaf)
    if kind == "trait":
        test = next(t for t in ("equals", "contains", "gte", "lte") if t in leaf)
        texts = {"key": leaf["trait"], "source": leaf.get("source", "")}
        if "gte" in leaf and "lte" in leaf:
            texts |= {"test": "between", "value": _text(leaf["gte"]), "to": _text(leaf["lte"])}
        else:
            texts |= {"test": test, "value": _text(leaf[test])}
    elif kind == "event":
        texts = {"name": leaf["event"]} | _number_texts(leaf, ("at_least", "at_most", "within_days"))
    elif kind == "purchased":
        texts = {
            "category": "" if leaf["purchased"] is True else leaf["purchased"],
            "item": leaf.get("item", ""),
        }
        texts |= _number_texts(leaf, ("at_least", "within_days", "spend_gte", "spend_lte"))
    elif kind == "persona":
        texts = {"id": leaf["persona"]}
    elif kind == "consent":
        texts = {"purpose": leaf["consent"], "granted": "true" if leaf["granted"] else "false"}
    elif kind == "wish":
        texts = {"item": "" if leaf["wish"] is True else leaf["wish"], "status": leaf["status"]}
    else:
        texts = {"rule": "" if leaf["moment"] is True else leaf["moment"], "status": leaf["status"]}
        texts |= _number_texts(leaf, ("within_days",))
    return {f"{kind}-{name}": value for name, value in texts.items()}


def _number_texts(leaf: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    return {key: _text(leaf[key]) for key in keys if key in leaf}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # 60.0 days reads as 60 (and 60 == 60.0 when read back)
    return str(value)


def _numbers(leaf: dict[str, Any], row: Row, kind: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        text = row.get(kind, key).strip()
        if text:
            leaf[key] = _number(text)


def _number(text: str) -> Any:
    """A whole number or a decimal when the text is plainly one; else the text, for the parser to refuse."""
    text = text.strip()
    if _WHOLE.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else text
    return text


def _scalar(text: str) -> Any:
    """A trait's value: true/false and numbers as such, else the text as typed."""
    if text.strip() in ("true", "false"):
        return text.strip() == "true"
    number = _number(text)
    return number if not isinstance(number, str) else text


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n")[0][:120]
