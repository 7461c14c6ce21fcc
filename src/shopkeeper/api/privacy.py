"""A person's data and rights over HTTP: explain, preferences, consent, rejections, export, erase, links.

Each route takes either the shop's admin key or the person's own signed link token (`Authorization:
Bearer pt2....`). A token reads and changes only the person it was issued for (bound to their internal id
and generation, see privacy/tokens.py), and may name them `me`. Write keys only
ingest, so they get 403 here. Every access is written to the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.auth import ADMIN_AS_BASIC, key_from_header, known_key, sent_as_basic
from shopkeeper.api.body import read_json
from shopkeeper.api.openapi import ADMIN_ONLY, ADMIN_OR_PERSON
from shopkeeper.api.schemas import (
    ConsentIn,
    ConsentOut,
    ErasedOut,
    ExplainOut,
    ExportOut,
    LinkOut,
    PersonOut,
    RejectionIn,
    errors,
    model_body,
    ok,
)
from shopkeeper.api.state import app_state
from shopkeeper.errors import AuthenticationError, InvalidInput, PermissionDenied
from shopkeeper.privacy import rights
from shopkeeper.privacy.preferences import Preferences
from shopkeeper.privacy.service import Actor
from shopkeeper.privacy.tokens import issue_link, looks_like_token, verify_token

router = APIRouter(tags=["privacy"])
ME = "me"
BODY_LIMIT = 64 * 1024
NEEDS = "send the admin key, or the person's link token, as: Authorization: Bearer <key or token>"


async def authorize(request: Request, person_ref: str, *, person_allowed: bool = True) -> tuple[Actor, str]:
    """Who is acting on `person_ref`, and the id to act on: for a link, the `LinkedPerson` it was issued
    for (found by person id and generation, never by an external id that could have moved)."""
    state = app_state(request)
    raw = key_from_header(request)
    if raw is None:
        raise AuthenticationError(NEEDS, field="Authorization")
    if looks_like_token(raw):
        if sent_as_basic(request):  # Basic is for write keys (Segment's SDKs); links are Bearer
            raise AuthenticationError(NEEDS, field="Authorization")
        if not person_allowed:
            raise PermissionDenied(
                "a person's link cannot do this; it needs the admin key", field="Authorization"
            )
        return Actor("person", "person link"), await run_in_threadpool(_linked, state, raw, person_ref)
    key = await known_key(state.store.keys, raw)
    if sent_as_basic(request) and (key is None or key.kind == "admin"):
        raise AuthenticationError(ADMIN_AS_BASIC if key else NEEDS, field="Authorization")
    if key is None:
        raise AuthenticationError("unknown or revoked key", field="Authorization")
    if key.kind != "admin":
        raise PermissionDenied(
            "this endpoint needs an admin key or the person's link; write keys may only ingest",
            field="Authorization",
        )
    if person_ref == ME:
        raise InvalidInput("`me` works only with a person's link token; name the person", field="id")
    return Actor("admin", f"admin key {key.prefix}"), person_ref


def _linked(state: Any, raw: str, person_ref: str) -> Any:
    own = verify_token(state.store, state.secret, raw)
    if person_ref != ME and state.privacy.find(person_ref) != own.person_id:
        raise PermissionDenied("this link is for another person", field="id")
    return own


async def _run(request: Request, person_ref: str, work: Any, *, person_allowed: bool = True) -> Any:
    actor, ref = await authorize(request, person_ref, person_allowed=person_allowed)
    return await run_in_threadpool(work, actor, ref)


@router.get(
    "/v1/people/{person_ref:id}/explain",
    summary="Every trait and how it was resolved",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(ExplainOut, "Every trait, what it beat, and why"), **errors(400, 401, 403, 404)},
)
async def explain(person_ref: str, request: Request) -> dict[str, Any]:
    privacy = app_state(request).privacy
    result: dict[str, Any] = await _run(request, person_ref, lambda a, r: privacy.explain(r, a))
    return result


@router.get(
    "/v1/people/{person_ref:id}/consent",
    summary="Consent per purpose now, and its history",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(ConsentOut, "Consent now, and the ledger"), **errors(400, 401, 403, 404)},
)
async def get_consent(person_ref: str, request: Request) -> dict[str, Any]:
    privacy = app_state(request).privacy
    result: dict[str, Any] = await _run(request, person_ref, lambda a, r: privacy.consent_of(r, a))
    return result


async def _change(request: Request, person_ref: str, change: str) -> dict[str, Any]:
    """A change with a JSON body: `change` names the PrivacyService method, called (ref, body, actor)."""
    method = getattr(app_state(request).privacy, change)
    body = await read_json(request, BODY_LIMIT)
    result: dict[str, Any] = await _run(request, person_ref, lambda a, r: method(r, body, a))
    return result


@router.put(
    "/v1/people/{person_ref:id}/consent",
    summary="Grant or withdraw consent: {purpose: bool}",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(ConsentOut, "Consent now, and the ledger"), **errors(400, 401, 403, 404, 413)},
    openapi_extra=model_body(ConsentIn),
)
async def put_consent(person_ref: str, request: Request) -> dict[str, Any]:
    return await _change(request, person_ref, "set_consent")


@router.put(
    "/v1/people/{person_ref:id}/preferences",
    summary="State preferences (they beat any guess)",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(PersonOut, "The person, with what they stated"), **errors(400, 401, 403, 404, 413)},
    openapi_extra=model_body(Preferences, minProperties=1),
)
async def put_preferences(person_ref: str, request: Request) -> dict[str, Any]:
    return await _change(request, person_ref, "state_preferences")


@router.post(
    "/v1/people/{person_ref:id}/rejections",
    summary='"That\'s not me": reject a guess',
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(PersonOut, "The person, without the guess"), **errors(400, 401, 403, 404, 413)},
    openapi_extra=model_body(RejectionIn),
)
async def post_rejection(person_ref: str, request: Request) -> dict[str, Any]:
    return await _change(request, person_ref, "reject")


@router.get(
    "/v1/people/{person_ref:id}/export",
    summary="Everything about a person, as JSON",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(ExportOut, "Everything held about them"), **errors(400, 401, 403, 404)},
)
async def export(person_ref: str, request: Request) -> dict[str, Any]:
    state = app_state(request)
    result: dict[str, Any] = await _run(
        request, person_ref, lambda a, r: rights.export(state.privacy, state.profiles, state.store, r, a)
    )
    return result


@router.post(
    "/v1/people/{person_ref:id}/link",
    summary="A signed, expiring preference-centre link",
    dependencies=ADMIN_ONLY,
    response_model=None,
    responses={**ok(LinkOut, "The link and its token"), **errors(400, 401, 403, 404)},
)
async def post_link(
    person_ref: str, request: Request, days: Annotated[int | None, Query(ge=1, le=365)] = None
) -> dict[str, Any]:
    state = app_state(request)

    def make(actor: Actor, ref: str) -> dict[str, Any]:
        person_id = state.privacy.find(ref)
        ttl = timedelta(days=days or state.settings.link_days)
        token = issue_link(state.store, state.secret, ref, ttl=ttl)
        state.privacy.audit_now(actor, "issue_link", person_id, days=ttl.days)
        base = state.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return {
            "url": f"{base}/preferences#token={token}",
            "token": token,
            "expires_at": (datetime.now(UTC) + ttl).isoformat(),
        }

    result: dict[str, Any] = await _run(request, person_ref, make, person_allowed=False)
    return result


@router.delete(
    "/v1/people/{person_ref:id}",
    summary="Erase a person everywhere",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(ErasedOut, "Erased, with what was deleted"), **errors(400, 401, 403, 404)},
)
async def delete_person(person_ref: str, request: Request) -> dict[str, Any]:
    state = app_state(request)
    result: dict[str, Any] = await _run(
        request,
        person_ref,
        lambda a, r: rights.erase(state.privacy, state.store, r, a, forget=state.decider.erased),
    )
    return result
