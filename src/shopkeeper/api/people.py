"""The shop's own API about people (admin key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.auth import admin_key
from shopkeeper.api.state import AppState
from shopkeeper.records import ApiKey

router = APIRouter(tags=["people"])


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.shopkeeper
    return state


def require_admin(request: Request) -> ApiKey:
    return admin_key(_state(request).store.keys, request)


Admin = Annotated[ApiKey, Depends(require_admin)]


@router.get("/v1/people/{person_ref:path}/events", summary="A person's newest events, as stored")
async def get_person_events(
    person_ref: str, request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    store = _state(request).store
    summary = await run_in_threadpool(store.person_summary, person_ref)
    events = await run_in_threadpool(store.events.for_person, summary.person_id, limit=limit)
    return {"person_id": summary.person_id, "events": events}


@router.get("/v1/people/{person_ref:path}", summary="What is known about a person, by any of their ids")
async def get_person(person_ref: str, request: Request, _: Admin) -> dict[str, object]:
    """Ids, merges, event counts, and every trait's winning value with its source, evidence and age."""
    profile = await run_in_threadpool(_state(request).profiles.get, person_ref)
    return profile.to_json()
