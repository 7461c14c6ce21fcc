"""Segment's tracking API: /v1/track, /identify, /page, /screen, /group, /alias and /batch, with CORS.

analytics.js (analytics-next) posts to one-letter paths (`/v1/t`, `/v1/p`, ...) with `Content-Type:
text/plain` and the write key in the body; those paths are served too, so its snippet can point here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.auth import key_from_header, write_key
from shopkeeper.api.body import read_json
from shopkeeper.api.openapi import WRITE_KEY_ONLY
from shopkeeper.api.schemas import IngestResult, errors, ok
from shopkeeper.api.state import AppState
from shopkeeper.errors import PermissionDenied, ShopkeeperError
from shopkeeper.events.ingest import check_batch_shape
from shopkeeper.events.spec import Message, MessageType, parse_object, parse_time

router = APIRouter(tags=["tracking (Segment spec)"])

_SHORT = {"track": "t", "identify": "i", "page": "p", "screen": "s", "group": "g", "alias": "a", "batch": "b"}
TRACKING_PATHS = tuple(f"/v1/{p}" for p in _SHORT) + tuple(f"/v1/{s}" for s in _SHORT.values())
_ALLOW_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"


_TEXT = {"type": "string", "minLength": 1, "maxLength": 255}
# a message names its person
_SOMEONE = [{"required": [name], "properties": {name: _TEXT}} for name in ("userId", "anonymousId")]
_REQUIRED = {"alias": ["previousId", "userId"], "track": ["event"], "group": ["groupId"]}


def _message_schema(kind: str | None = None) -> dict[str, Any]:
    """A message's schema; for one endpoint's kind, its `type` (optional there) and its required fields."""
    schema = {**Message.model_json_schema(), "anyOf": _SOMEONE}
    if kind is None:
        return schema
    properties = {**schema["properties"], "type": {"const": kind}}
    properties.update({name: _TEXT for name in _REQUIRED.get(kind, [])})
    required = [name for name in schema.get("required", []) if name != "type"] + _REQUIRED.get(kind, [])
    return {**schema, "properties": properties, "required": required}


def _body_schema(kind: str) -> dict[str, Any]:
    if kind != "batch":
        return _message_schema(kind)
    return {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": _message_schema()},
            "sentAt": {"type": "string", "format": "date-time"},
            "context": {"type": "object"},
            "integrations": {"type": "object"},
            "writeKey": {"type": "string"},
        },
    }


def _openapi(kind: str) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _body_schema(kind)}}}
    }


def cors_headers(state: AppState, origin: str | None, allowed: bool | None = None) -> dict[str, str]:
    """The CORS headers for a browser `origin`, when some write key (or the given one) allows it."""
    if not origin:
        return {}
    if allowed is None:
        known = state.store.keys.allowed_origins()
        allowed = "*" in known or origin in known
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if allowed else {"Vary": "Origin"}


async def _ingest(request: Request, kind: str) -> Response:
    state: AppState = request.app.state.shopkeeper
    settings = state.settings
    origin = request.headers.get("origin")
    try:
        header_key = key_from_header(request)
        limit = settings.max_batch_bytes if kind == "batch" else settings.max_message_bytes
        body = await read_json(request, limit)
        key = await write_key(state.store.keys, header_key, body)
        if origin and not key.allows_origin(origin):
            raise PermissionDenied(
                f"this write key does not allow the browser origin {origin!r}; add it with "
                "`shopkeeper keys create --kind write --origin ...`",
                field="Origin",
                code="origin_not_allowed",
            )
        if kind == "batch":
            messages = check_batch_shape(body)
            options: dict[str, Any] = {
                "context": parse_object(body.get("context"), field="context"),
                "integrations": parse_object(body.get("integrations"), field="integrations"),
                "sent_at": parse_time(body.get("sentAt"), field="sentAt"),
            }
            result = await run_in_threadpool(
                state.ingestor.ingest, messages, where="batch", key_id=key.id, **options
            )
        else:
            type_: MessageType = kind  # type: ignore[assignment]
            result = await run_in_threadpool(
                state.ingestor.ingest, [body], type_=type_, where="", key_id=key.id
            )
    except ShopkeeperError as exc:
        headers = cors_headers(state, origin)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="shopkeeper"'
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)
    return JSONResponse(
        {
            "success": True,
            "received": result.received,
            "stored": result.stored,
            "duplicates": result.duplicates,
        },
        headers=cors_headers(state, origin, allowed=True),
    )


async def _preflight(request: Request) -> Response:
    state: AppState = request.app.state.shopkeeper
    origin = request.headers.get("origin")
    headers = cors_headers(state, origin)
    if "Access-Control-Allow-Origin" not in headers:
        error = PermissionDenied(
            "no write key allows this browser origin", field="Origin", code="origin_not_allowed"
        )
        return JSONResponse(error.to_json(), status_code=403, headers=headers)
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": "600",
        }
    )
    return Response(status_code=204, headers=headers)


def _register(kind: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await _ingest(request, kind)

    summary = {
        "batch": "Send up to 500 KB of messages of any type in one call",
        "track": "Record an action a person took",
        "identify": "Tie a person to their traits, and their anonymous id to their user id",
        "page": "Record a page view",
        "screen": "Record an app screen view",
        "group": "Associate a person with a group (a company, a household)",
        "alias": "Say that two ids are the same person (the one way to merge two known users)",
    }[kind]
    router.add_api_route(
        f"/v1/{kind}",
        endpoint,
        methods=["POST"],
        summary=summary,
        openapi_extra=_openapi(kind),
        name=kind,
        dependencies=WRITE_KEY_ONLY,
        responses={**ok(IngestResult, "Stored (or already stored)"), **errors(400, 401, 403, 413)},
    )
    router.add_api_route(
        f"/v1/{_SHORT[kind]}", endpoint, methods=["POST"], include_in_schema=False, name=f"{kind}_short"
    )
    router.add_api_route(
        f"/v1/{kind}", _preflight, methods=["OPTIONS"], include_in_schema=False, name=f"{kind}_preflight"
    )
    router.add_api_route(
        f"/v1/{_SHORT[kind]}",
        _preflight,
        methods=["OPTIONS"],
        include_in_schema=False,
        name=f"{kind}_short_preflight",
    )


# /v1/batch first: the router tries routes in order, and batches are most of the traffic.
for _kind in sorted(_SHORT, key=lambda kind: kind != "batch"):
    _register(_kind)
