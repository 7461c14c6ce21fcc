"""Moment rules: what triggers a moment, for whom, through which channels, with which template.

A rule is JSON (over HTTP) or a TOML table (`shopkeeper moments load FILE.toml`), validated here with
precise errors. A fresh shop has the documented default rules (`DEFAULT_RULES`), on unless the setting
`SHOPKEEPER_DEFAULT_RULES` is false or a stored rule of the same name replaces one.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.conditions import parse_condition

Trigger = Literal[
    "back_in_stock", "price_drop", "new_arrival", "milestone", "abandoned_cart", "winback", "ask"
]
TRIGGERS: tuple[str, ...] = Trigger.__args__  # type: ignore[attr-defined]
Channel = Literal["staff", "email", "webhook"]
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DAY = 86_400


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackInStockParams(_Params):
    dedupe_days: Annotated[float, Field(ge=0, le=365)] = 7  # one message per wish and restock episode


class PriceDropParams(_Params):
    min_percent: Annotated[float, Field(ge=0, le=100)] = 10
    min_amount: Annotated[float, Field(ge=0)] = 0
    seen_days: Annotated[int, Field(ge=1, le=365)] = 30  # viewed or carted within


class NewArrivalParams(_Params):
    max_age_days: Annotated[int, Field(ge=1, le=365)] = 14


class MilestoneParams(_Params):
    orders: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=list, max_length=50)
    spend: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list, max_length=50)
    anniversary: bool = False  # a year (two, ...) since the first order
    trait: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # the trait crossing this value; checked even when left out, so that a trait needs its value
    value: float | None = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _needs_trait(cls, value: float | None, info: Any) -> float | None:
        if (value is None) != (info.data.get("trait") is None):
            raise ValueError("trait and value go together")
        return value


class AbandonedCartParams(_Params):
    pass  # the wait is the rule's delay_seconds (default for this trigger: 4 hours)


class WinbackParams(_Params):
    factor: Annotated[float, Field(ge=1, le=20)] = 2.0  # silent for this many of their usual gaps
    min_days: Annotated[int, Field(ge=1, le=3650)] = 60
    min_orders: Annotated[int, Field(ge=1, le=1000)] = 2
    repeat_days: Annotated[int, Field(ge=1, le=3650)] = 180


class AskParams(_Params):
    question: Literal["size", "favourite_categories"] = "size"
    weak_below: Annotated[float, Field(ge=0, le=1)] = 0.5  # favourite_categories: a guess this weak


PARAMS: dict[str, type[_Params]] = {
    "back_in_stock": BackInStockParams,
    "price_drop": PriceDropParams,
    "new_arrival": NewArrivalParams,
    "milestone": MilestoneParams,
    "abandoned_cart": AbandonedCartParams,
    "winback": WinbackParams,
    "ask": AskParams,
}
DEFAULT_DELAY = {"abandoned_cart": 4 * 3600}


class RuleIn(BaseModel):
    """A rule as sent: `PUT /v1/moments/rules/{name}`, or a table of a TOML file."""

    model_config = ConfigDict(extra="forbid")

    trigger: Trigger
    channels: Annotated[list[Channel], Field(min_length=1, max_length=3)]
    template: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    delay_seconds: Annotated[int, Field(ge=0, le=90 * DAY)] | None = None
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    params: dict[str, Any] = Field(default_factory=dict)
    audience: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    where: dict[str, Any] | None = None  # a condition in the audience language (docs/audiences.md)
    consent: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)
    transactional: bool = False
    enabled: bool = True
    description: Annotated[str, Field(max_length=500)] | None = None

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a channel appears twice")
        return value


@dataclass(frozen=True)
class Rule:
    """A validated rule, with its params parsed for its trigger."""

    name: str
    trigger: str
    channels: tuple[str, ...]
    template: str | None
    delay_seconds: int
    priority: int
    params: Any  # the trigger's params model
    audience: str | None
    where: dict[str, Any] | None
    consent: tuple[str, ...]
    transactional: bool
    enabled: bool
    description: str | None
    origin: str  # default | http | file | cli

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trigger": self.trigger,
            "channels": list(self.channels),
            "template": self.template,
            "delay_seconds": self.delay_seconds,
            "priority": self.priority,
            "params": self.params.model_dump(),
            "audience": self.audience,
            "where": self.where,
            "consent": list(self.consent),
            "transactional": self.transactional,
            "enabled": self.enabled,
            "description": self.description,
            "origin": self.origin,
        }

    def body(self) -> dict[str, Any]:
        """The rule as it is stored (without its name and origin)."""
        found = self.to_json()
        del found["name"], found["origin"]
        return found


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            "a rule name is 1 to 64 lowercase letters, digits, - or _, starting with a letter or digit",
            field="name",
        )
    return name


def parse_rule(name: str, raw: Any, *, origin: str, where: str = "") -> Rule:
    """Validate a rule, naming the bad field precisely (`where` prefixes it, e.g. a TOML table)."""
    check_name(name)
    if not isinstance(raw, dict):
        raise InvalidInput("a rule is a JSON object", field=where.rstrip(".") or "body")
    try:
        rule = RuleIn.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, where) from None
    params: Any
    try:
        params = PARAMS[rule.trigger].model_validate(rule.params)
    except ValidationError as exc:
        raise _invalid(exc, f"{where}params.") from None
    if "email" in rule.channels and rule.template is None:
        raise InvalidInput("an email rule names its template", field=f"{where}template")
    if rule.trigger == "milestone" and not (
        params.orders or params.spend or params.anniversary or params.trait is not None
    ):
        raise InvalidInput(
            "a milestone rule names at least one of orders, spend, anniversary, or trait and value",
            field=f"{where}params",
        )
    audience_rule = None if rule.where is None else parse_condition(rule.where, field=f"{where}where")
    delay = rule.delay_seconds if rule.delay_seconds is not None else DEFAULT_DELAY.get(rule.trigger, 0)
    return Rule(
        name=name,
        trigger=rule.trigger,
        channels=tuple(rule.channels),
        template=rule.template,
        delay_seconds=delay,
        priority=rule.priority,
        params=params,
        audience=rule.audience,
        where=audience_rule,
        consent=tuple(rule.consent),
        transactional=rule.transactional,
        enabled=rule.enabled,
        description=rule.description,
        origin=origin,
    )


def _invalid(exc: ValidationError, where: str) -> InvalidInput:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = (
            "is not a field of a rule"
            if not where.endswith("params.")
            else "is not a parameter of this trigger"
        )
    return InvalidInput(f"{where}{path}: {message}" if path else message, field=f"{where}{path}".rstrip("."))


def read_toml(path: Path) -> dict[str, Any]:
    """The rules of a TOML file: one table per rule, `[back_in_stock_grey]`, or under `[rules.NAME]`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", field="file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}", field="file") from None
    tables = data.get("rules", data)
    if not isinstance(tables, dict) or not tables:
        raise InvalidInput(
            f"{path} holds no rules: write one table per rule, e.g. [back_in_stock]", field="file"
        )
    return tables


DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "back_in_stock": {
        "trigger": "back_in_stock",
        "channels": ["staff", "email"],
        "template": "back_in_stock",
        "priority": 80,
        "description": "What someone wished for is back, in their size: a staff call where staff may "
        "reach out, else an email.",
    },
    "price_drop": {
        "trigger": "price_drop",
        "channels": ["email"],
        "template": "price_drop",
        "priority": 60,
        "params": {"min_percent": 10, "seen_days": 30},
        "description": "Something they viewed or carted in the last 30 days is at least 10% cheaper.",
    },
    "milestone": {
        "trigger": "milestone",
        "channels": ["staff"],
        "priority": 40,
        "params": {"orders": [5, 10, 25, 50], "anniversary": True},
        "description": "Their 5th, 10th, 25th or 50th order, or a year since the first: a personal note.",
    },
}


def default_rules() -> dict[str, Rule]:
    return {name: parse_rule(name, body, origin="default") for name, body in DEFAULT_RULES.items()}
