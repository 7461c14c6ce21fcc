"""`POST /v1/decide`: what to show a person in a placement, and why (admin key)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from shopkeeper.api.body import JsonBodyRoute
from shopkeeper.api.people import Admin
from shopkeeper.api.schemas import DecisionOut, errors, ok
from shopkeeper.api.state import app_state
from shopkeeper.decide.pipeline import CONTEXT_BYTES
from shopkeeper.events.spec import ExternalId

router = APIRouter(tags=["decide"], route_class=JsonBodyRoute)


class DecideRequest(BaseModel):
    """Who, where, how many. The same call serves web, email and staff."""

    # userId or anonymousId (checked by the decider, documented here)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("userId", "anonymousId")
            ]
        },
    )

    userId: ExternalId = None
    anonymousId: ExternalId = None
    placement: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "web"
    n: Annotated[StrictInt, Field(ge=1, le=50)] | None = None
    context: dict[str, Any] | None = Field(
        None,
        description=(
            "What the caller knows of the moment, as Segment's `context`: the page, the locale, the item "
            'being viewed (`{"item_id": "85099B"}`, a string: it is left out of the items). At most '
            f"{CONTEXT_BYTES:,} bytes of JSON; logged with the decision, exported and erased with it."
        ),
    )


@router.post(
    "/v1/decide",
    summary="Decide what to show a person in a placement, with reasons",
    responses={**ok(DecisionOut, "The items to show, with reasons"), **errors(400, 401, 403)},
)
async def decide(body: DecideRequest, request: Request, _: Admin) -> Response:
    state = app_state(request)
    decision = await asyncio.get_running_loop().run_in_executor(
        state.deciding,
        lambda: state.decider.decide(
            user_id=body.userId,
            anonymous_id=body.anonymousId,
            placement=body.placement,
            n=body.n,
            context=body.context,
        ),
    )
    # Serialised directly: FastAPI's generic encoder costs more than the decision itself.
    return Response(orjson.dumps(decision.to_json()), media_type="application/json")
