"""The shop's own API about people (admin key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.openapi import ADMIN_KEY, ADMIN_OR_PERSON
from shopkeeper.api.privacy import authorize
from shopkeeper.api.schemas import PersonEventsOut, PersonOut, errors, ok
from shopkeeper.api.state import app_state
from shopkeeper.privacy.service import Actor
from shopkeeper.store.keys import ApiKey

router = APIRouter(tags=["people"])


Admin = Annotated[ApiKey, Security(ADMIN_KEY)]  # the admin key, checked by its security scheme


@router.get(
    "/v1/people/{person_ref:id}/events",
    summary="A person's newest events, as stored",
    response_model=None,
    responses={**ok(PersonEventsOut, "Their newest events"), **errors(400, 401, 403, 404)},
)
async def get_person_events(
    person_ref: str, request: Request, key: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    state = app_state(request)
    store = state.store
    summary = await run_in_threadpool(store.person_summary, person_ref)
    await run_in_threadpool(
        state.privacy.audit_now, Actor("admin", f"admin key {key.prefix}"), "read_events", summary.person_id
    )
    events = await run_in_threadpool(store.events.for_person, summary.person_id, limit=limit)
    return {"person_id": summary.person_id, "events": events}


@router.get(
    "/v1/people/{person_ref:id}",
    summary="What is known about a person, by any of their ids",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(PersonOut, "The person"), **errors(400, 401, 403, 404)},
)
async def get_person(person_ref: str, request: Request) -> dict[str, object]:
    """Ids, merges, event counts, every trait's winning value with its source, evidence and age, and
    consent per purpose. The admin key, or the person's own link token (which may say `me`)."""
    privacy = app_state(request).privacy
    actor, ref = await authorize(request, person_ref)
    result: dict[str, object] = await run_in_threadpool(privacy.profile, ref, actor)
    return result
