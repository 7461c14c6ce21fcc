"""What a shop sends to describe an item: validated with pydantic, with precise field errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from shopkeeper.errors import InvalidInput
from shopkeeper.events.spec import refuse_nul

MAX_ITEMS_PER_BATCH = 1000
CATEGORY_SEPARATOR = " > "
MAX_STOCK = 2**31 - 1  # what every backend's INTEGER column holds

Id = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Scalar = StrictStr | int | float | bool


def _category(value: Any) -> Any:
    """A category path as a list (`["Bags", "Lunch bags"]`) or a string (`"Bags > Lunch bags"`)."""
    if value is None:
        return ""
    if isinstance(value, list):
        if not all(isinstance(part, str) and part.strip() and "\x00" not in part for part in value):
            raise ValueError("a category path is a list of non-empty strings")
        return CATEGORY_SEPARATOR.join(part.strip() for part in value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return CATEGORY_SEPARATOR.join(p.strip() for p in value.split(">") if p.strip())
    return value


def _number(value: Any) -> Any:
    """JSON's true/false are not numbers, whatever Python thinks."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Price = Annotated[float, Field(ge=0), AfterValidator(_finite), BeforeValidator(_number)]


class VariantIn(BaseModel):
    """One buyable variant of an item, e.g. size M in grey, with its own stock."""

    model_config = ConfigDict(extra="forbid")

    variant_id: Annotated[Id, BeforeValidator(refuse_nul)]
    attributes: dict[Annotated[str, Field(max_length=64)], Scalar] = {}
    price: Price | None = None
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK), BeforeValidator(_number)] | None = None


class ItemIn(BaseModel):
    """An item as a shop upserts it (`PUT /v1/items/{id}`, `POST /v1/items/batch`, `import items`)."""

    model_config = ConfigDict(extra="forbid")

    item_id: Annotated[Id, BeforeValidator(refuse_nul)]
    title: Annotated[StrictStr, Field(min_length=1, max_length=1000), BeforeValidator(refuse_nul)]
    category: Annotated[StrictStr, Field(max_length=1000), BeforeValidator(_category)] = ""
    price: Price | None = None
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")] | None = None
    attributes: dict[Annotated[str, Field(max_length=64)], Scalar | list[Scalar]] = {}
    created_at: datetime | None = None
    variants: list[VariantIn] = Field(default_factory=list, max_length=1000)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, value: list[VariantIn]) -> list[VariantIn]:
        seen: set[str] = set()
        for variant in value:
            if variant.variant_id in seen:
                raise ValueError(f"variant_id {variant.variant_id!r} appears twice")
            seen.add(variant.variant_id)
        return value


def readable_title(title: str) -> str:
    """A title as people read it: one written in capitals ("HAND WARMER UNION JACK", as many shops'
    systems keep them) in sentence case; any other as it is."""
    return title.strip().capitalize() if title.isupper() else title


def parse_items(raw: Any, *, where: str = "items", item_id: str | None = None) -> list[ItemIn]:
    """Validate a list of raw items (or one, when `item_id` comes from the URL), naming bad fields."""
    if item_id is not None:
        if not isinstance(raw, dict):
            raise InvalidInput("the body must be a JSON object describing the item", field="body")
        if "item_id" in raw and raw["item_id"] != item_id:
            raise InvalidInput("item_id in the body differs from the one in the URL", field="item_id")
        return [_parse_one({**raw, "item_id": item_id}, "")]
    if not isinstance(raw, list):
        raise InvalidInput(f"{where} must be an array of items", field=where)
    if len(raw) > MAX_ITEMS_PER_BATCH:
        raise InvalidInput(f"at most {MAX_ITEMS_PER_BATCH} items per call", field=where)
    items = [_parse_one(entry, f"{where}[{i}].") for i, entry in enumerate(raw)]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.item_id in seen:
            raise InvalidInput(f"item_id {item.item_id!r} appears twice", field=f"{where}[{i}].item_id")
        seen.add(item.item_id)
    return items


def describe(error: ErrorDetails) -> str:
    """One validation error in plain words: "must be at most 2147483647"."""
    ctx = error.get("ctx", {})
    if error["type"] == "less_than_equal":
        return f"must be at most {_plain(ctx.get('le'))}"
    if error["type"] == "greater_than_equal":
        return f"must be at least {_plain(ctx.get('ge'))}"
    return error["msg"].removeprefix("Value error, ")


def _plain(number: Any) -> Any:
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _parse_one(raw: Any, where: str) -> ItemIn:
    if not isinstance(raw, dict):
        raise InvalidInput("an item must be a JSON object", field=where.rstrip(".") or "body")
    try:
        return ItemIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = ""
        for part in first["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        field = f"{where}{path}" if path else where.rstrip(".") or "body"
        detail = describe(first)
        raise InvalidInput(f"{field}: {detail}", field=field) from None
