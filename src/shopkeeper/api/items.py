"""The shop's catalog over HTTP (admin key): upsert items with their variants and stock, read them back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.body import read_json
from shopkeeper.api.people import Admin
from shopkeeper.api.schemas import ItemHistoryOut, ItemOut, UpsertOut, errors, inline_refs, json_body, ok
from shopkeeper.api.state import app_state
from shopkeeper.catalog.items import MAX_ITEMS_PER_BATCH, ItemIn, parse_items
from shopkeeper.errors import InvalidInput
from shopkeeper.store.catalog import CatalogChange, Item, UpsertResult

MAX_ITEM_BYTES = 256 * 1024
MAX_ITEMS_BATCH_BYTES = 5 * 1024 * 1024

router = APIRouter(tags=["catalog"])


def _item_schema(*, id_in_url: bool) -> dict[str, Any]:
    schema = inline_refs(ItemIn.model_json_schema())
    if id_in_url:
        schema["required"] = [name for name in schema.get("required", []) if name != "item_id"]
        schema["properties"]["item_id"]["description"] = "Optional; must equal the id in the URL."
    return schema


_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {"type": "array", "maxItems": MAX_ITEMS_PER_BATCH, "items": _item_schema(id_in_url=False)}
    },
}


def _result_json(result: UpsertResult) -> dict[str, int]:
    return {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "changes": result.changes,
    }


def _change_json(change: CatalogChange) -> dict[str, object]:
    return {
        "variant_id": change.variant_id,
        "field": change.field,
        "old_value": change.old_value,
        "new_value": change.new_value,
        "at": change.at.isoformat(),
    }


@router.put(
    "/v1/items/{item_id:id}",
    summary="Create or replace one item, with its variants and their stock",
    openapi_extra=json_body(_item_schema(id_in_url=True)),
    response_model=None,
    responses={**ok(UpsertOut, "What changed"), **errors(400, 401, 403, 413)},
)
async def put_item(item_id: str, request: Request, _: Admin) -> dict[str, int]:
    body = await read_json(request, MAX_ITEM_BYTES)
    items = parse_items(body, item_id=item_id)
    result = await run_in_threadpool(app_state(request).store.catalog.upsert, items)
    return _result_json(result)


@router.post(
    "/v1/items/batch",
    summary=f"Create or replace up to {MAX_ITEMS_PER_BATCH} items, all or nothing",
    openapi_extra=json_body(_BATCH_SCHEMA),
    response_model=None,
    responses={**ok(UpsertOut, "What changed"), **errors(400, 401, 403, 413)},
)
async def post_items_batch(request: Request, _: Admin) -> dict[str, int]:
    body = await read_json(request, MAX_ITEMS_BATCH_BYTES)
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object: {"items": [...]}', field="body")
    extra = sorted(set(body) - {"items"})
    if extra:
        raise InvalidInput(f'unknown field {extra[0]!r}; the body is {{"items": [...]}}', field=extra[0])
    if "items" not in body:
        raise InvalidInput('the body needs "items": an array of items', field="items")
    items = parse_items(body["items"], where="items")
    result = await run_in_threadpool(app_state(request).store.catalog.upsert, items)
    return _result_json(result)


@router.get(
    "/v1/items/{item_id:id}/history",
    summary="An item's price and stock changes, oldest first",
    response_model=None,
    responses={**ok(ItemHistoryOut, "Its changes"), **errors(400, 401, 403, 404)},
)
async def get_item_history(item_id: str, request: Request, _: Admin) -> dict[str, object]:
    catalog = app_state(request).store.catalog

    def load() -> list[CatalogChange]:
        catalog.get(item_id)  # 404 for an unknown item, rather than an empty history
        return catalog.history(item_id)

    changes = await run_in_threadpool(load)
    return {"item_id": item_id, "changes": [_change_json(c) for c in changes]}


@router.get(
    "/v1/items/{item_id:id}",
    summary="An item with its variants and their stock",
    response_model=None,
    responses={**ok(ItemOut, "The item"), **errors(400, 401, 403, 404)},
)
async def get_item(item_id: str, request: Request, _: Admin) -> dict[str, object]:
    item: Item = await run_in_threadpool(app_state(request).store.catalog.get, item_id)
    return item.to_json()
