"""Experiments over HTTP (admin key): create, list, stop, and the verdict report (also of `holdout`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic.config import JsonDict
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.body import JsonBodyRoute
from shopkeeper.api.people import Admin
from shopkeeper.api.schemas import ExperimentListOut, ExperimentOut, ReportOut, errors, ok
from shopkeeper.api.state import app_state
from shopkeeper.decide.placements import placements_from
from shopkeeper.experiments import DEFAULT_FLOOR, DEFAULT_WINDOW_DAYS
from shopkeeper.experiments.service import new_experiment

router = APIRouter(tags=["experiments"], route_class=JsonBodyRoute)

Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]
# documented (the service checks it, with its own precise message)
Slug = Annotated[Name, Field(json_schema_extra={"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"})]
_OPTIONS_SCHEMA: JsonDict = {
    "additionalProperties": False,
    "properties": {
        "model": {"enum": ["personalized", "popularity"]},
        "n": {"type": "integer", "minimum": 1, "maximum": 50},
        "max_per_category": {"type": "integer", "minimum": 1, "maximum": 50},
        "repeats": {"type": "boolean"},
    },
}


class VariantIn(BaseModel):
    """One arm. `options` may set `model` (personalized | popularity), `n`, `max_per_category` and
    `repeats`; an empty object is the placement as configured."""

    model_config = ConfigDict(extra="forbid")

    name: Slug
    options: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_OPTIONS_SCHEMA)


class ExperimentIn(BaseModel):
    """A new experiment: it starts running at once. The first variant is the control."""

    model_config = ConfigDict(extra="forbid")

    name: Slug
    placement: Name
    variants: Annotated[list[VariantIn], Field(min_length=2, max_length=20)]
    weights: list[Any] | None = None  # checked by new_experiment: positive numbers, one per variant
    audience: dict[str, Any] | Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    bandit: StrictBool = False
    reward: Literal["conversion", "revenue"] = "conversion"  # a bandit's reward
    window_days: Annotated[StrictInt, Field(ge=1, le=365)] = DEFAULT_WINDOW_DAYS
    floor: Annotated[StrictFloat, Field(ge=0, le=0.5)] = DEFAULT_FLOOR
    outcome_events: Annotated[
        list[Annotated[StrictStr, Field(min_length=1, max_length=255)]], Field(max_length=20)
    ] = []


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


@router.post(
    "/v1/experiments",
    summary="Create and start an experiment (A/B/n or bandit) on a placement",
    status_code=201,
    responses={**ok(ExperimentOut, "Created and running", 201), **errors(400, 401, 403, 409)},
)
async def create_experiment(body: ExperimentIn, request: Request, _: Admin) -> Response:
    state = app_state(request)
    experiment = new_experiment(
        body.name,
        body.placement,
        [(v.name, v.options) for v in body.variants],
        placements=placements_from(state.settings.placements_json),
        weights=body.weights,
        audience=body.audience,
        bandit=body.bandit,
        reward=body.reward,
        window_days=body.window_days,
        floor=body.floor,
        outcome_events=body.outcome_events,
        targeting=state.shop.audiences,
    )
    created = await run_in_threadpool(state.decider.experiments.create, experiment)
    return _json(created.to_json(), 201)


@router.get(
    "/v1/experiments",
    summary="Every experiment, oldest first",
    responses={**ok(ExperimentListOut, "Every experiment, and the holdout"), **errors(401, 403)},
)
async def list_experiments(request: Request, _: Admin) -> Response:
    service = app_state(request).decider.experiments
    found = await run_in_threadpool(service.experiments.list)
    return _json({"experiments": [e.to_json() for e in found], "holdout": {"share": service.holdout.share}})


@router.post(
    "/v1/experiments/{name}/stop",
    summary="Stop an experiment: everyone gets the default again",
    responses={**ok(ExperimentOut, "Stopped"), **errors(400, 401, 403, 404)},
)
async def stop_experiment(name: str, request: Request, _: Admin) -> Response:
    service = app_state(request).decider.experiments
    stopped = await run_in_threadpool(service.stop, name)
    return _json(stopped.to_json())


@router.get(
    "/v1/experiments/{name}/report",
    summary="Per arm: people, conversions, revenue, lift with CIs, SRM, reach and the verdict",
    responses={**ok(ReportOut, "The report"), **errors(400, 401, 403, 404)},
)
async def experiment_report(
    name: str,
    request: Request,
    _: Admin,
    window_days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> Response:
    """`holdout` is the headline report: personalized against the universal holdout's baseline.
    This worker's decisions still waiting in its log are stored first, so that a decision made just
    before is counted."""
    decider = app_state(request).decider
    service = decider.experiments

    def settled_report() -> dict[str, Any]:
        decider.log.flush()
        return service.report(name, window_days=window_days)

    report = await run_in_threadpool(settled_report)
    return _json(report)
