"""Moments over HTTP: rules (admin key), a person's wishes (the admin key, or their own link, which may
state a wish or drop one), the outbox and its dead letters, and the staff inbox's tasks (admin key)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from shopkeeper.api.body import read_json
from shopkeeper.api.moment_schemas import (
    RULE_SCHEMA,
    TASK_CLAIM_SCHEMA,
    TASK_DONE_SCHEMA,
    TASK_SNOOZE_SCHEMA,
    WISH_SCHEMA,
    OutboxOut,
    ReplayedOut,
    RuleOut,
    RulesOut,
    TaskOut,
    TasksOut,
    WishesOut,
    WishOut,
)
from shopkeeper.api.openapi import ADMIN_OR_PERSON
from shopkeeper.api.people import Admin
from shopkeeper.api.privacy import authorize
from shopkeeper.api.schemas import errors, json_body, ok
from shopkeeper.api.state import app_state
from shopkeeper.errors import InvalidInput

router = APIRouter(tags=["moments"])
MAX_BODY = 64 * 1024
Limit = Annotated[int, Query(ge=1, le=1000)]
# An id of ours: a positive 64-bit integer (a bigger one would overflow the database's, not be unknown).
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


@router.put(
    "/v1/moments/rules/{name}",
    summary="Save a moment rule (it replaces a default rule of the same name)",
    openapi_extra=json_body(RULE_SCHEMA),
    response_model=None,
    responses={**ok(RuleOut, "The rule as saved"), **errors(400, 401, 403, 413)},
)
async def put_rule(name: str, request: Request, _: Admin) -> dict[str, Any]:
    body = await read_json(request, MAX_BODY)
    moments = app_state(request).shop.moments
    return await run_in_threadpool(lambda: moments.put_rule(name, body, origin="http"))


@router.get(
    "/v1/moments/rules",
    summary="Every moment rule, with its sends and suppressions (by reason) in the last 30 days",
    response_model=None,
    responses={**ok(RulesOut, "The rules"), **errors(401, 403)},
)
async def list_rules(request: Request, _: Admin) -> dict[str, Any]:
    found = await run_in_threadpool(app_state(request).shop.moments.rules)
    return {"items": found}


@router.get(
    "/v1/moments/rules/{name}",
    summary="A moment rule, its counts and its latest moments",
    response_model=None,
    responses={**ok(RuleOut, "The rule"), **errors(400, 401, 403, 404)},
)
async def get_rule(name: str, request: Request, _: Admin) -> dict[str, Any]:
    return await run_in_threadpool(app_state(request).shop.moments.rule, name)


@router.get(
    "/v1/people/{person_ref:id}/wishes",
    summary="A person's wishes (back in stock, price): the promise ledger",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(WishesOut, "Their wishes, each with its evidence"), **errors(400, 401, 403, 404)},
)
async def get_wishes(person_ref: str, request: Request) -> dict[str, Any]:
    _, ref = await authorize(request, person_ref)
    return await run_in_threadpool(app_state(request).shop.moments.wishes, ref)


@router.post(
    "/v1/people/{person_ref:id}/wishes",
    summary="Record a wish: stated by the person, asked in store by staff, or observed",
    dependencies=ADMIN_OR_PERSON,
    openapi_extra=json_body(WISH_SCHEMA),
    response_model=None,
    responses={
        **ok(WishOut, "The wish as it is now (one per person and variant)"),
        **errors(400, 401, 403, 404, 413),
    },
)
async def post_wish(person_ref: str, request: Request) -> dict[str, Any]:
    actor, ref = await authorize(request, person_ref)
    body = await read_json(request, MAX_BODY)
    if actor.kind == "person" and isinstance(body, dict) and body.get("source") != "stated":
        raise InvalidInput('a person states their own wishes: source must be "stated"', field="source")
    return await run_in_threadpool(app_state(request).shop.moments.add_wish, ref, body)


@router.delete(
    "/v1/people/{person_ref:id}/wishes/{wish_id}",
    summary="Drop a wish (the person no longer wants to hear about it)",
    dependencies=ADMIN_OR_PERSON,
    response_model=None,
    responses={**ok(WishOut, "The wish, dropped"), **errors(400, 401, 403, 404)},
)
async def drop_wish(person_ref: str, wish_id: RowId, request: Request) -> dict[str, Any]:
    _, ref = await authorize(request, person_ref)
    return await run_in_threadpool(app_state(request).shop.moments.drop_wish, ref, wish_id)


@router.get(
    "/v1/outbox",
    summary="Moments: sent, pending, failed, and suppressed with their reason; newest first",
    response_model=None,
    responses={**ok(OutboxOut, "The moments"), **errors(400, 401, 403, 404)},
)
async def get_outbox(
    request: Request, _: Admin, person: str | None = None, status: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    moments = app_state(request).shop.moments
    return await run_in_threadpool(lambda: moments.outbox(person=person, status=status, limit=limit))


@router.post(
    "/v1/outbox/{outbox_id}/replay",
    summary="Queue a failed message again (the dead-letter list's replay)",
    response_model=None,
    responses={
        **ok(ReplayedOut, "How many were queued again (0: it had not failed)"),
        **errors(400, 401, 403),
    },
)
async def replay(outbox_id: RowId, request: Request, _: Admin) -> dict[str, Any]:
    state = app_state(request)
    replayed = await run_in_threadpool(state.shop.moments.replay, [outbox_id])
    return {"replayed": replayed}


@router.get(
    "/v1/tasks",
    summary="The staff inbox: tasks by person, status, staff member, store or due date",
    response_model=None,
    responses={**ok(TasksOut, "The tasks, soonest due first"), **errors(400, 401, 403, 404)},
)
async def get_tasks(
    request: Request,
    _: Admin,
    person: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    store: str | None = None,
    due_before: datetime | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    moments = app_state(request).shop.moments
    return await run_in_threadpool(
        lambda: moments.tasks(
            person=person, status=status, assignee=assignee, store=store, due_before=due_before, limit=limit
        )
    )


def _fields(body: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the body is a JSON object", field="body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    for name in sorted(required):
        if not isinstance(body.get(name), str):
            raise InvalidInput(f"{name} is required, as a string", field=name)
    for name in allowed - required:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidInput(f"{name} is a string", field=name)
    return body


@router.post(
    "/v1/tasks/{task_id}/claim",
    summary="Claim a task for a staff member",
    openapi_extra=json_body(TASK_CLAIM_SCHEMA),
    response_model=None,
    responses={**ok(TaskOut, "The task, claimed"), **errors(400, 401, 403, 404, 409)},
)
async def claim_task(task_id: RowId, request: Request, _: Admin) -> dict[str, Any]:
    body = _fields(await read_json(request, MAX_BODY), {"assignee", "store"}, {"assignee"})
    moments = app_state(request).shop.moments
    return await run_in_threadpool(lambda: moments.claim(task_id, body["assignee"], store=body.get("store")))


@router.post(
    "/v1/tasks/{task_id}/snooze",
    summary="Snooze a task until a time",
    openapi_extra=json_body(TASK_SNOOZE_SCHEMA),
    response_model=None,
    responses={**ok(TaskOut, "The task, snoozed"), **errors(400, 401, 403, 404, 409)},
)
async def snooze_task(task_id: RowId, request: Request, _: Admin) -> dict[str, Any]:
    body = _fields(await read_json(request, MAX_BODY), {"until"}, {"until"})
    try:
        until = datetime.fromisoformat(body["until"])
    except ValueError:
        raise InvalidInput("until is an ISO 8601 date and time", field="until") from None
    moments = app_state(request).shop.moments
    return await run_in_threadpool(moments.snooze, task_id, until)


@router.post(
    "/v1/tasks/{task_id}/done",
    summary="Close a task with its outcome (written to the event log, so it counts in lift)",
    openapi_extra=json_body(TASK_DONE_SCHEMA),
    response_model=None,
    responses={**ok(TaskOut, "The task, done"), **errors(400, 401, 403, 404, 409)},
)
async def done_task(task_id: RowId, request: Request, admin: Admin) -> dict[str, Any]:
    body = _fields(await read_json(request, MAX_BODY), {"outcome", "note"}, {"outcome"})
    moments = app_state(request).shop.moments
    return await run_in_threadpool(
        lambda: moments.done(task_id, body["outcome"], body.get("note"), by=f"admin key {admin.prefix}")
    )


# ---- one-click unsubscribe (RFC 8058), the link every email moment carries ---------------------------

UNSUBSCRIBE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unsubscribe</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<h1>{title}</h1><p>{text}</p>{form}
</body></html>
"""
UNSUBSCRIBE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _unsubscribe(request: Request, token: str) -> None:
    from shopkeeper.privacy.service import Actor  # noqa: PLC0415
    from shopkeeper.privacy.tokens import verify_token  # noqa: PLC0415

    state = app_state(request)
    person = verify_token(state.store, state.secret, token)
    state.privacy.set_consent(person, {"email_marketing": False}, Actor("person", "one-click unsubscribe"))


@router.get(
    "/unsubscribe",
    summary="The page an email's unsubscribe link opens: a button that withdraws email consent",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "The page"}, **errors(400)},
)
async def unsubscribe_page(token: Annotated[str, Query(max_length=4096)] = "") -> Response:
    """A GET never unsubscribes (mail scanners follow links); the button POSTs."""
    form = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Stop emails</button></form>'
    )
    page = UNSUBSCRIBE_PAGE.format(
        title="Stop our emails?", text="You will get no more marketing emails from us.", form=form
    )
    return HTMLResponse(page, headers=UNSUBSCRIBE_HEADERS)


@router.post(
    "/unsubscribe",
    summary="One-click unsubscribe (RFC 8058): withdraws the person's email_marketing consent",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "Done"}, **errors(400, 401, 403)},
)
async def unsubscribe(request: Request, token: Annotated[str, Query(max_length=4096)]) -> Response:
    await run_in_threadpool(_unsubscribe, request, token)
    page = UNSUBSCRIBE_PAGE.format(
        title="You are unsubscribed", text="We will send you no more marketing emails.", form=""
    )
    return HTMLResponse(page, headers=UNSUBSCRIBE_HEADERS)
