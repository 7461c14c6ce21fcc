"""The audience condition language: parsed and checked precisely, described in English (docs/audiences.md)."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shopkeeper.errors import InvalidInput

GROUPS = ("all", "any", "not")
# Each leaf kind's keys: the kind key first (it names the leaf), then its options.
LEAF_KEYS: dict[str, tuple[str, ...]] = {
    "trait": ("trait", "equals", "contains", "gte", "lte", "source"),
    "event": ("event", "at_least", "at_most", "within_days"),
    "purchased": ("purchased", "item", "within_days", "at_least", "spend_gte", "spend_lte"),
    "persona": ("persona",),
    "consent": ("consent", "granted"),
    "wish": ("wish", "status"),
    "moment": ("moment", "status", "within_days"),
}
KINDS = (*GROUPS, *LEAF_KEYS)
TRAIT_SOURCES = ("stated", "observed", "inferred")
WISH_STATUSES = ("open", "notified", "dropped", "expired", "fulfilled")
MOMENT_STATUSES = ("pending", "held", "sending", "sent", "failed", "suppressed", "cancelled")
MAX_DEPTH = 6  # the root is level 1; a condition inside all/any/not is one level deeper
MAX_LEAVES = 32
MAX_TEXT = 255
MAX_DAYS = 36_500


def parse_condition(raw: Any, *, field: str = "where") -> dict[str, Any]:
    """A condition, checked and normalized (each leaf's kind key first, its defaults filled in).

    Raises InvalidInput whose `field` names the spot (`where.all[1].at_least`), saying what was expected
    and which keys are known there."""
    leaves = [0]
    return _parse(raw, field, 1, leaves)


def _parse(raw: Any, path: str, level: int, leaves: list[int]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a condition (a JSON object); {_known()}", field=path)
    if level > MAX_DEPTH:
        raise InvalidInput(f"{path}: conditions may nest at most {MAX_DEPTH} levels deep", field=path)
    kinds = [key for key in raw if key in KINDS]
    if not kinds:
        where = f"{path}.{next(iter(raw))}" if raw else path
        raise InvalidInput(
            f"{where}: unknown key; a condition has one of the keys {', '.join(KINDS)}"
            if raw
            else f"{path}: an empty object; a condition has one of the keys {', '.join(KINDS)}",
            field=where,
        )
    if len(kinds) > 1:
        raise InvalidInput(
            f"{path}: a condition has one kind, but this one has {' and '.join(kinds)}; "
            "combine conditions with all or any",
            field=f"{path}.{kinds[1]}",
        )
    kind = kinds[0]
    if kind in GROUPS:
        return _parse_group(raw, kind, path, level, leaves)
    leaves[0] += 1
    if leaves[0] > MAX_LEAVES:
        raise InvalidInput(f"{path}: a condition may have at most {MAX_LEAVES} leaves", field=path)
    known = LEAF_KEYS[kind]
    for key in raw:
        if key not in known:
            raise InvalidInput(
                f"{path}.{key}: unknown key for {_a(kind)} condition; known keys: {', '.join(known)}",
                field=f"{path}.{key}",
            )
    try:
        return _LEAF_PARSERS[kind](raw, path)
    except InvalidInput as exc:
        if "known keys" in exc.message:
            raise
        message = f"{exc.message} (keys of {_a(kind)} condition: {', '.join(known)})"
        raise InvalidInput(message, field=exc.field) from None


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _parse_group(raw: dict[str, Any], kind: str, path: str, level: int, leaves: list[int]) -> dict[str, Any]:
    for key in raw:
        if key != kind:
            raise InvalidInput(
                f"{path}.{key}: unknown key beside {kind!r}; a {kind} condition has the one key {kind!r}",
                field=f"{path}.{key}",
            )
    inner = raw[kind]
    if kind == "not":
        return {"not": _parse(inner, f"{path}.not", level + 1, leaves)}
    if not isinstance(inner, list) or not inner:
        raise InvalidInput(f"{path}.{kind}: expected a non-empty list of conditions", field=f"{path}.{kind}")
    return {kind: [_parse(c, f"{path}.{kind}[{i}]", level + 1, leaves) for i, c in enumerate(inner)]}


def _known() -> str:
    return f"known keys: {', '.join(KINDS)}"


# ---- values ------------------------------------------------------------------------------------------


def storable(text: str) -> bool:
    """Text a database keeps as it is: no control characters (a NUL ends a PostgreSQL string), no lone
    surrogates."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _name(raw: dict[str, Any], key: str, path: str, what: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or not storable(value):
        raise InvalidInput(
            f"{path}.{key}: expected {what} (a non-empty string of at most {MAX_TEXT} characters, "
            "without control characters)",
            field=f"{path}.{key}",
        )
    return value


def _whole(raw: dict[str, Any], key: str, path: str, *, least: int) -> int:
    value = raw[key]
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= 1_000_000_000:
        raise InvalidInput(
            f"{path}.{key}: expected a whole number of at least {least}", field=f"{path}.{key}"
        )
    return value


def _number(raw: dict[str, Any], key: str, path: str, *, lowest: float | None = 0.0) -> float | int:
    value = raw[key]
    fine = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not fine or (lowest is not None and value < lowest):
        wanted = "a number" if lowest is None else f"a number of at least {lowest:g}"
        raise InvalidInput(f"{path}.{key}: expected {wanted}", field=f"{path}.{key}")
    number: float | int = value
    return number


def _days(raw: dict[str, Any], path: str) -> float | int:
    days = _number(raw, "within_days", path, lowest=None)
    if not 0 < days <= MAX_DAYS:
        raise InvalidInput(
            f"{path}.within_days: expected a number of days above 0 and at most {MAX_DAYS}",
            field=f"{path}.within_days",
        )
    return days


def _choice(raw: dict[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str:
    value = raw[key]
    if value not in choices or not isinstance(value, str):
        raise InvalidInput(f"{path}.{key}: expected one of {', '.join(choices)}", field=f"{path}.{key}")
    return value


def _scalar(raw: dict[str, Any], key: str, path: str) -> Any:
    value = raw[key]
    if isinstance(value, str) and len(value) <= MAX_TEXT and storable(value):
        return value
    if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
        return value
    raise InvalidInput(
        f"{path}.{key}: expected a string (at most {MAX_TEXT} characters, without control characters), "
        "a number or true/false",
        field=f"{path}.{key}",
    )


def _at_most_not_below(low: float | None, high: float | None, path: str, keys: tuple[str, str]) -> None:
    if low is not None and high is not None and high < low:
        raise InvalidInput(
            f"{path}.{keys[1]}: expected at least {keys[0]} ({low:g})", field=f"{path}.{keys[1]}"
        )


# ---- leaves --------------------------------------------------------------------------------------------


def _trait(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """The experiments' one-trait rule (`experiments.service.parse_audience`), plus an optional source."""
    leaf: dict[str, Any] = {"trait": _name(raw, "trait", path, "a trait name")}
    tests = [key for key in ("equals", "contains", "gte", "lte") if key in raw]
    if not tests or (len(tests) > 1 and tests != ["gte", "lte"]):
        raise InvalidInput(
            f"{path}: a trait condition needs one test: equals, contains, or gte and/or lte (numbers); "
            f"known keys: {', '.join(LEAF_KEYS['trait'])}",
            field=f"{path}.{tests[1]}" if len(tests) > 1 else path,
        )
    for key in tests:
        leaf[key] = _number(raw, key, path, lowest=None) if key in ("gte", "lte") else _scalar(raw, key, path)
    _at_most_not_below(leaf.get("gte"), leaf.get("lte"), path, ("gte", "lte"))
    if "source" in raw:
        leaf["source"] = _choice(raw, "source", path, TRAIT_SOURCES)
    return leaf


def _event(raw: dict[str, Any], path: str) -> dict[str, Any]:
    leaf: dict[str, Any] = {"event": _name(raw, "event", path, "an event name")}
    leaf["at_least"] = _whole(raw, "at_least", path, least=1) if "at_least" in raw else 1
    if "at_most" in raw:
        leaf["at_most"] = _whole(raw, "at_most", path, least=1)
        _at_most_not_below(leaf["at_least"], leaf["at_most"], path, ("at_least", "at_most"))
    if "within_days" in raw:
        leaf["within_days"] = _days(raw, path)
    return leaf


def _purchased(raw: dict[str, Any], path: str) -> dict[str, Any]:
    what = raw["purchased"]
    if what is not True:
        what = _name(raw, "purchased", path, "true or a category")
    leaf: dict[str, Any] = {"purchased": what}
    if "item" in raw:
        leaf["item"] = _name(raw, "item", path, "an item id")
    if "within_days" in raw:
        leaf["within_days"] = _days(raw, path)
    leaf["at_least"] = _whole(raw, "at_least", path, least=1) if "at_least" in raw else 1
    for key in ("spend_gte", "spend_lte"):
        if key in raw:
            leaf[key] = _number(raw, key, path)
    _at_most_not_below(leaf.get("spend_gte"), leaf.get("spend_lte"), path, ("spend_gte", "spend_lte"))
    return leaf


def _persona(raw: dict[str, Any], path: str) -> dict[str, Any]:
    return {"persona": _name(raw, "persona", path, "a persona id")}


def _consent(raw: dict[str, Any], path: str) -> dict[str, Any]:
    leaf: dict[str, Any] = {"consent": _name(raw, "consent", path, "a consent purpose")}
    granted = raw.get("granted", True)
    if not isinstance(granted, bool):
        raise InvalidInput(f"{path}.granted: expected true or false", field=f"{path}.granted")
    leaf["granted"] = granted
    return leaf


def _wish(raw: dict[str, Any], path: str) -> dict[str, Any]:
    what = raw["wish"]
    if what is not True:
        what = _name(raw, "wish", path, "true or an item id")
    status = _choice(raw, "status", path, WISH_STATUSES) if "status" in raw else "open"
    return {"wish": what, "status": status}


def _moment(raw: dict[str, Any], path: str) -> dict[str, Any]:
    what = raw["moment"]
    if what is not True:
        what = _name(raw, "moment", path, "true or a moment rule's name")
    status = _choice(raw, "status", path, MOMENT_STATUSES) if "status" in raw else "sent"
    leaf: dict[str, Any] = {"moment": what, "status": status}
    if "within_days" in raw:
        leaf["within_days"] = _days(raw, path)
    return leaf


_LEAF_PARSERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "trait": _trait,
    "event": _event,
    "purchased": _purchased,
    "persona": _persona,
    "consent": _consent,
    "wish": _wish,
    "moment": _moment,
}


# ---- reading a parsed condition -------------------------------------------------------------------------


def kind_of(condition: dict[str, Any]) -> str:
    """A parsed condition's kind: all, any, not, or a leaf kind."""
    return next(key for key in condition if key in KINDS)


def leaves(condition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every leaf of a parsed condition, in order."""
    kind = kind_of(condition)
    if kind == "not":
        yield from leaves(condition["not"])
    elif kind in GROUPS:
        for child in condition[kind]:
            yield from leaves(child)
    else:
        yield condition


def leaf_kinds(condition: dict[str, Any]) -> set[str]:
    """The leaf kinds a parsed condition uses (`{"event", "consent"}`)."""
    return {kind_of(leaf) for leaf in leaves(condition)}


def trait_matches(leaf: dict[str, Any], value: Any) -> bool:
    """Whether a resolved trait value meets a trait leaf: exactly `experiments.service.matches` (a test
    holds them together). `contains`: a list holds it, or a category path has it as one of its parts."""
    if value is None:
        return False
    if "equals" in leaf:
        return bool(value == leaf["equals"])
    if "contains" in leaf:
        wanted = str(leaf["contains"])
        values: Iterable[Any] = value if isinstance(value, list) else [value]
        return any(str(v) == wanted or wanted in str(v).split(" > ") for v in values)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if "gte" in leaf and not value >= leaf["gte"]:
        return False
    return not ("lte" in leaf and not value <= leaf["lte"])


# ---- in English -----------------------------------------------------------------------------------------


def describe(condition: dict[str, Any]) -> str:
    """A parsed condition as one English sentence that reads after "people who" ("did Product Viewed at
    least 3 times in the last 14 days, and bought Party in the last 90 days")."""
    return _describe(condition, nested=False)


def _describe(condition: dict[str, Any], *, nested: bool) -> str:
    kind = kind_of(condition)
    if kind == "not":
        return f"are not among those who {_describe(condition['not'], nested=True)}"
    if kind in ("all", "any"):
        parts = [_describe(child, nested=True) for child in condition[kind]]
        if len(parts) == 1:
            return parts[0]
        text = ", ".join(parts[:-1]) + f", {'and' if kind == 'all' else 'or'} {parts[-1]}"
        return f"({text})" if nested else text
    return _LEAF_WORDS[kind](condition)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _days_words(leaf: dict[str, Any]) -> str:
    days = leaf.get("within_days")
    if days is None:
        return ""
    return " in the last day" if days == 1 else f" in the last {days:g} days"


def _between(low: float | None, high: float | None, unit: str = "") -> str:
    if low is not None and high is not None:
        return f"{low:g}{unit} to {high:g}{unit}"
    if low is not None:
        return f"at least {low:g}{unit}"
    return f"at most {high:g}{unit}"


def _trait_words(leaf: dict[str, Any]) -> str:
    name = f"{leaf['source']} {leaf['trait']}" if "source" in leaf else leaf["trait"]
    if "equals" in leaf:
        return f"have {name} {_value(leaf['equals'])}"
    if "contains" in leaf:
        return f"have {name} including {_value(leaf['contains'])}"
    return f"have {name} of {_between(leaf.get('gte'), leaf.get('lte'))}"


def _event_words(leaf: dict[str, Any]) -> str:
    low, high = leaf["at_least"], leaf.get("at_most")
    if high is None:
        count = "" if low == 1 else f" at least {_times(low)}"
    elif low == high:
        count = f" exactly {_times(low)}"
    else:
        count = f" {low} to {high} times" if low > 1 else f" at most {_times(high)}"
    return f"did {leaf['event']}{count}{_days_words(leaf)}"


def _purchased_words(leaf: dict[str, Any]) -> str:
    category = None if leaf["purchased"] is True else leaf["purchased"]
    if "item" in leaf:
        what = f"item {leaf['item']}" + (f" in {category}" if category else "")
    else:
        what = category or "anything"
    orders = "" if leaf["at_least"] == 1 else f" in at least {leaf['at_least']} orders"
    spend = ""
    if "spend_gte" in leaf or "spend_lte" in leaf:
        spend = f" for {_between(leaf.get('spend_gte'), leaf.get('spend_lte'))} in all"
    return f"bought {what}{orders}{spend}{_days_words(leaf)}"


def _wish_words(leaf: dict[str, Any]) -> str:
    item = "" if leaf["wish"] is True else f" for {leaf['wish']}"
    return f"have {_a(leaf['status'])} wish{item}"


def _moment_words(leaf: dict[str, Any]) -> str:
    rule = "a moment" if leaf["moment"] is True else f"the moment {leaf['moment']}"
    if leaf["status"] == "sent":
        return f"were sent {rule}{_days_words(leaf)}"
    return f"have {rule} {leaf['status']}{_days_words(leaf)}"


_LEAF_WORDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "trait": _trait_words,
    "event": _event_words,
    "purchased": _purchased_words,
    "persona": lambda leaf: f"are in persona {leaf['persona']}",
    "consent": lambda leaf: ("have granted " if leaf["granted"] else "have not granted ") + leaf["consent"],
    "wish": _wish_words,
    "moment": _moment_words,
}
