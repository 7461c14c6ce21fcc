"""Personas and audiences over HTTP (admin key): discover, list, show and rename personas; save, read and
delete audiences, their reach, and the broad-vs-narrow comparison."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.body import parse_json, read_body, read_json
from shopkeeper.api.people import Admin
from shopkeeper.api.persona_schemas import (
    AUDIENCE_SCHEMA,
    COMPARE_SCHEMA,
    DISCOVER_SCHEMA,
    RENAME_SCHEMA,
    AudienceOut,
    AudienceReachOut,
    AudiencesOut,
    CompareOut,
    DeletedOut,
    DiscoverOut,
    PersonaOut,
    PersonasOut,
)
from shopkeeper.api.schemas import errors, json_body, ok
from shopkeeper.api.state import app_state
from shopkeeper.errors import InvalidInput, NotFound

router = APIRouter(tags=["personas"])
MAX_BODY = 64 * 1024
PersonaId = Annotated[str, PathParam(min_length=1, max_length=16)]
AudienceName = Annotated[str, PathParam(min_length=1, max_length=64)]


async def _optional_json(request: Request) -> Any:
    """The JSON body, or None when there is none (these routes' bodies are optional)."""
    raw = await read_body(request, MAX_BODY)
    return parse_json(raw) if raw.strip() else None


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object", field="body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0][:64]!r}; known: {', '.join(sorted(allowed))}", field=unknown[0][:64]
        )
    return body


@router.post(
    "/v1/personas/discover",
    summary="Discover personas now: the fewest groups that cover the target share of customers",
    openapi_extra={"requestBody": json_body(DISCOVER_SCHEMA)["requestBody"] | {"required": False}},
    response_model=None,
    responses={
        **ok(DiscoverOut, "The run: k, coverage, separation, stability, churn, personas"),
        **errors(400, 401, 403, 413),
    },
)
async def discover(request: Request, _: Admin) -> dict[str, Any]:
    raw = await _optional_json(request)
    body = _object(raw, {"k", "seed", "target"})
    k = body.get("k", "auto")
    if k != "auto" and (not isinstance(k, int) or isinstance(k, bool)):
        raise InvalidInput('k is "auto" or a number of personas from 2 to 12', field="k")
    seed = body.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise InvalidInput("seed is a whole number from 0 to 2147483647", field="seed")
    target = body.get("target", 0.7)
    if not isinstance(target, int | float) or isinstance(target, bool):
        raise InvalidInput("target is a share from 0.3 to 0.95", field="target")
    personas = app_state(request).shop.personas
    return await run_in_threadpool(
        lambda: personas.discover(k=None if k == "auto" else k, seed=seed, target=float(target))
    )


@router.get(
    "/v1/personas",
    summary="The personas of the newest run, with its coverage",
    response_model=None,
    responses={**ok(PersonasOut, "The run and its personas"), **errors(401, 403)},
)
async def list_personas(request: Request, _: Admin) -> dict[str, Any]:
    return await run_in_threadpool(app_state(request).shop.personas.list)


@router.get(
    "/v1/personas/{persona_id}",
    summary="A persona: rule, size, shares, top categories and items, typical members",
    response_model=None,
    responses={**ok(PersonaOut, "The persona"), **errors(400, 401, 403, 404)},
)
async def get_persona(persona_id: PersonaId, request: Request, _: Admin) -> dict[str, Any]:
    return await run_in_threadpool(app_state(request).shop.personas.get, persona_id)


@router.patch(
    "/v1/personas/{persona_id}",
    summary="Rename a persona (the name stays across runs)",
    openapi_extra=json_body(RENAME_SCHEMA),
    response_model=None,
    responses={**ok(PersonaOut, "The persona, renamed"), **errors(400, 401, 403, 404, 413)},
)
async def rename_persona(persona_id: PersonaId, request: Request, _: Admin) -> dict[str, Any]:
    body = _object(await read_json(request, MAX_BODY), {"name"})
    if "name" not in body:
        raise InvalidInput('send {"name": "the new name"}', field="name")
    personas = app_state(request).shop.personas
    return await run_in_threadpool(personas.rename, persona_id, body["name"])


@router.get(
    "/v1/audiences",
    summary="Every saved audience and its live size",
    response_model=None,
    responses={**ok(AudiencesOut, "The audiences"), **errors(401, 403)},
)
async def list_audiences(request: Request, _: Admin) -> dict[str, Any]:
    return {"items": await run_in_threadpool(app_state(request).shop.audiences.list)}


@router.put(
    "/v1/audiences/{name}",
    summary="Save an audience (a condition in the audience language); answers its reach and the guard",
    openapi_extra=json_body(AUDIENCE_SCHEMA),
    response_model=None,
    responses={
        **ok(AudienceOut, "The audience as saved (`created`: whether it is new)"),
        **errors(400, 401, 403, 413),
    },
)
async def put_audience(name: AudienceName, request: Request, _: Admin) -> dict[str, Any]:
    body = _object(await read_json(request, MAX_BODY), {"where", "description"})
    if "where" not in body:
        raise InvalidInput('send {"where": a condition, "description": optional text}', field="where")
    audiences = app_state(request).shop.audiences
    found, created = await run_in_threadpool(
        lambda: audiences.put(name, body["where"], body.get("description"))
    )
    return found | {"created": created}


@router.get(
    "/v1/audiences/{name}",
    summary="An audience: its condition in words, its reach and the guard's word",
    response_model=None,
    responses={**ok(AudienceOut, "The audience"), **errors(400, 401, 403, 404)},
)
async def get_audience(name: AudienceName, request: Request, _: Admin) -> dict[str, Any]:
    return await run_in_threadpool(app_state(request).shop.audiences.show, name)


@router.delete(
    "/v1/audiences/{name}",
    summary="Delete an audience",
    response_model=None,
    responses={**ok(DeletedOut, "Deleted"), **errors(400, 401, 403, 404, 409)},
)
async def delete_audience(name: AudienceName, request: Request, _: Admin) -> dict[str, Any]:
    audiences = app_state(request).shop.audiences
    if not await run_in_threadpool(audiences.delete, name):
        raise NotFound(f"no audience is named {name!r}", field="name")
    return {"deleted": True, "name": name}


@router.get(
    "/v1/audiences/{name}/reach",
    summary="An audience's reach: size, shares of known, active and revenue, reachable, the guard",
    response_model=None,
    responses={**ok(AudienceReachOut, "The reach"), **errors(400, 401, 403, 404)},
)
async def audience_reach(name: AudienceName, request: Request, _: Admin) -> dict[str, Any]:
    return await run_in_threadpool(app_state(request).shop.audiences.reach, name)


@router.post(
    "/v1/audiences/{name}/compare",
    summary="Broad vs narrow: start (or report) the experiment that shows one placement to the audience "
    "and to an equal random sample of everyone else",
    openapi_extra={"requestBody": json_body(COMPARE_SCHEMA)["requestBody"] | {"required": False}},
    response_model=None,
    responses={**ok(CompareOut, "The comparison"), **errors(400, 401, 403, 404, 409, 413)},
)
async def compare_audience(name: AudienceName, request: Request, _: Admin) -> dict[str, Any]:
    from shopkeeper.decide.placements import placements_from  # noqa: PLC0415
    from shopkeeper.personas.compare import compare  # noqa: PLC0415

    body = _object(await _optional_json(request), {"placement"})
    placement = body.get("placement", "web")
    if not isinstance(placement, str):
        raise InvalidInput("placement is a placement's name", field="placement")
    shop = app_state(request).shop
    placements = placements_from(shop.settings.placements_json)
    return await run_in_threadpool(
        lambda: compare(shop.audiences, shop.experiments, placements, name, placement=placement)
    )
