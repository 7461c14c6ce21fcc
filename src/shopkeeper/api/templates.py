"""Templates over HTTP (admin key): save (each save a new version, refused with every lint finding),
list, read, and preview across real people and the built-in hostile profiles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.body import read_json
from shopkeeper.api.people import Admin
from shopkeeper.api.schemas import (
    LintFailedOut,
    PreviewsOut,
    TemplateOut,
    TemplatesOut,
    TemplateSummaryOut,
    errors,
    json_body,
    ok,
)
from shopkeeper.api.state import app_state
from shopkeeper.content.service import MAX_PREVIEW_PEOPLE, NAME_PATTERN, Message
from shopkeeper.errors import InvalidInput

router = APIRouter(tags=["content"])
MAX_TEMPLATE_BYTES = 512 * 1024
MAX_PREVIEW_BYTES = 16 * 1024
_NAME = {"name": {"description": "1 to 64 lower-case letters, digits, - and _", "pattern": NAME_PATTERN}}

_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["channel", "html"],
    "additionalProperties": False,
    "properties": {
        "channel": {"enum": ["email", "web", "staff"]},
        "subject": {"type": ["string", "null"]},
        "preheader": {"type": ["string", "null"]},
        "html": {"type": "string"},
        "text": {"type": ["string", "null"], "description": "null: made from the HTML"},
        "fields": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["slot"],
                "additionalProperties": False,
                "properties": {
                    "slot": {
                        "enum": [
                            "first_name",
                            "full_name",
                            "salutation",
                            "text",
                            "number",
                            "money",
                            "date",
                            "size",
                            "item",
                            "items",
                            "url",
                        ]
                    },
                    "from": {"type": "string", "description": "The trait key (firstName, size, ...)"},
                    "fallback": {"type": "string", "description": 'The text used instead, or "abort"'},
                    "weakest_source": {"enum": ["inferred", "observed", "stated"]},
                },
            },
        },
        "variants": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}
_PREVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "people": {"type": "array", "maxItems": MAX_PREVIEW_PEOPLE, "items": {"type": "string"}},
        "hostile": {"type": "boolean"},
    },
}


@router.put(
    "/v1/templates/{name}",
    summary="Save a template: a new version, after lint (422 with every finding when it fails)",
    openapi_extra=json_body(_TEMPLATE_SCHEMA),
    response_model=None,
    responses={
        **ok(TemplateSummaryOut, "The version saved"),
        **ok(LintFailedOut, "Lint findings, each with its line and column; nothing was saved", 422),
        **errors(400, 401, 403, 413),
    },
)
async def put_template(name: str, request: Request, admin: Admin) -> dict[str, Any]:
    body = await read_json(request, MAX_TEMPLATE_BYTES)
    content = app_state(request).shop.content
    stored = await run_in_threadpool(content.save, name, body, by=f"admin key {admin.prefix}")
    return stored.summary()


@router.get(
    "/v1/templates",
    summary="Every template, at its latest version",
    response_model=None,
    responses={**ok(TemplatesOut, "The templates"), **errors(401, 403)},
)
async def list_templates(request: Request, _: Admin) -> dict[str, Any]:
    found = await run_in_threadpool(app_state(request).shop.content.latest)
    return {"templates": [t.summary() for t in found]}


@router.get(
    "/v1/templates/{name}",
    summary="A template as saved, its latest version or ?version=N, and its messages not produced",
    response_model=None,
    responses={**ok(TemplateOut, "The template"), **errors(400, 401, 403, 404)},
)
async def get_template(name: str, request: Request, _: Admin, version: int | None = None) -> dict[str, Any]:
    if version is not None and not 1 <= version <= 2**31 - 1:
        raise InvalidInput("version is a whole number from 1", field="version")
    content = app_state(request).shop.content
    stored = await run_in_threadpool(content.get, name, version)
    aborts = await run_in_threadpool(content.aborts, name)
    return {**stored.summary(), "template": stored.body, "aborts": aborts}


@router.post(
    "/v1/templates/{name}/preview",
    summary="Render a template for people by id and, with hostile, the built-in hostile profiles",
    openapi_extra=json_body(_PREVIEW_SCHEMA),
    response_model=None,
    responses={**ok(PreviewsOut, "One preview per person"), **errors(400, 401, 403, 404, 413)},
)
async def preview_template(name: str, request: Request, _: Admin) -> dict[str, Any]:
    body = await read_json(request, MAX_PREVIEW_BYTES)
    people, hostile = _preview_body(body)
    content = app_state(request).shop.content
    previews = await run_in_threadpool(lambda: content.preview(name, people, hostile=hostile))
    return {"previews": [_preview(m) for m in previews]}


def _preview_body(body: Any) -> tuple[list[str], bool]:
    if not isinstance(body, dict):
        raise InvalidInput('the body is an object: {"people": [ids], "hostile": bool}', field="body")
    unknown = sorted(set(body) - {"people", "hostile"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}: send people and hostile", field=unknown[0])
    people = body.get("people", [])
    if not isinstance(people, list) or not all(isinstance(p, str) and 0 < len(p) <= 255 for p in people):
        raise InvalidInput("people is a list of ids (strings of 1 to 255 characters)", field="people")
    if len(people) > MAX_PREVIEW_PEOPLE:
        raise InvalidInput(f"preview at most {MAX_PREVIEW_PEOPLE} people at once", field="people")
    hostile = body.get("hostile", False)
    if not isinstance(hostile, bool):
        raise InvalidInput("hostile is true or false", field="hostile")
    if not people and not hostile:
        raise InvalidInput("name at least one person, or set hostile", field="people")
    return people, hostile


def _preview(message: Message) -> dict[str, Any]:
    return {
        "person": message.person,
        "subject": message.subject,
        "html": message.html,
        "text": message.text,
        "fields": [f.to_json() for f in message.fields],
        "aborted": message.aborted,
    }
